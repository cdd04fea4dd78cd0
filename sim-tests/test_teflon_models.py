"""Whole models through Mesa Teflon on the emulated NPU (`rocketsim run`, i.e. what `make run`
does: the photo decoded and resized by rocket-infer in the guest), against TFLite's CPU kernels on
the host on the same input bytes. Each run is recorded in build/<model>-<photo>.json; the copy in
golden/ is what the NPU gave when it was committed, and the NPU must still give exactly that."""
import json
import os
import subprocess

import pytest

import board
import remote
import teflon
import yolox

pytestmark = pytest.mark.boot
GOLDEN = os.path.join(board.ROOT, "golden")
ROCKETSIM = os.environ.get("ROCKETSIM",
                           os.path.join(board.BUILD, "tools", "rocketsim", "rocketsim"))


def run(model, photo, out):
    if board.REMOTE:   # a board over SSH (pytest --board): the same run there
        return remote.run_model(model, photo, out)
    r = subprocess.run([ROCKETSIM, "run", "--model", model,
                        "--image", photo, "--invokes", "1", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [json.load(open(out / w / "summary.json")) for w in ("npu", "cpu")]


def record(name, rows, npu_key):
    """Write build/NAME.json (build/board/ on a board); compare the NPU's part with
    golden/NAME.json if it exists."""
    with open(os.path.join(board.RESULTS, f"{name}.json"), "w") as f:
        json.dump(rows, f, indent=1)
    path = os.path.join(GOLDEN, f"{name}.json")
    if os.path.exists(path):
        want = [npu_key(r) for r in json.load(open(path))]
        assert [npu_key(r) for r in rows] == want, \
            f"the NPU no longer gives {path}; if that is intended, copy build/{name}.json there"


@pytest.mark.parametrize("photo", ["chelsea", "astronaut"])
def test_mobiledet(photo, tmp_path):
    npu, cpu = run("mobiledet", photo, tmp_path)
    npu = [d for d in npu["detections"] if d["score"] >= 0.4]
    cpu = [d for d in cpu["detections"] if d["score"] >= 0.4]
    assert npu, "no detection on the NPU"
    rows = []
    for d in npu:
        best = max(cpu, key=lambda c: (c["class"] == d["class"]) * teflon.iou(c["box"], d["box"]),
                   default=None)
        assert best and best["class"] == d["class"], f"{photo}: NPU {d['label']} not on the CPU"
        iou = round(teflon.iou(best["box"], d["box"]), 3)
        rows.append({"class": d["class"], "label": d["label"], "npu_score": d["score"],
                     "cpu_score": best["score"], "iou": iou})
        assert rows[-1]["iou"] > 0.8 and abs(d["score"] - best["score"]) < 0.15, rows[-1]
    record(f"mobiledet-{photo}", rows, lambda r: (r["label"], r["npu_score"]))


@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_mobilenet(photo, tmp_path):
    npu, cpu = run("mobilenet", photo, tmp_path)
    top_n, top_c = npu["top"], cpu["top"]
    assert top_n[0]["index"] == top_c[0]["index"], (top_n[0], top_c[0])
    assert abs(top_n[0]["score"] - top_c[0]["score"]) < 0.1, (top_n[0], top_c[0])
    common = {t["index"] for t in top_n} & {t["index"] for t in top_c}
    assert len(common) >= 3, (top_n, top_c)
    rows = [{"rank": i + 1, "npu": f"{n['label']} {n['score']:.4f}",
             "cpu": f"{c['label']} {c['score']:.4f}"} for i, (n, c) in enumerate(zip(top_n, top_c))]
    record(f"mobilenet-{photo}", rows, lambda r: r["npu"])


@pytest.mark.parametrize("photo", ["astronaut", "motorcycle_left"])
def test_yolox(photo, tmp_path):
    """Mesa's YOLOX test model (320x416) is non-square: Mesa programs W and H swapped (spec
    §3.1), so its 3x3 layers see the image reshaped and the box terms differ from the CPU; the
    objectness and class terms must still agree within ±1 (see teflon-per-layer.json)."""
    npu, cpu = run("yolox", photo, tmp_path)
    rows = []
    for k, (hn, hc) in enumerate(zip(yolox.heads(tmp_path / "npu", npu),
                                     yolox.heads(tmp_path / "cpu", cpu))):
        scale = npu["outputs"][k]["scale"]
        box = abs(hn[..., :4] - hc[..., :4]).max() / scale
        cls = abs(hn[..., 4:] - hc[..., 4:]).max() / scale
        rows.append({"head": npu["outputs"][k]["shape"], "box_max_abs_diff": round(float(box)),
                     "obj_cls_max_abs_diff": round(float(cls)),
                     "npu_mean_box": [round(float(v), 4) for v in hn[..., :4].mean((0, 1))]})
        assert cls <= 1, rows[-1]
    record(f"yolox-{photo}", rows, lambda r: r["npu_mean_box"])
