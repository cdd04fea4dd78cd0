"""Mesa's Teflon delegate (Debian's libteflon.so, rocket driver) on the emulated NPU under the real
kernel driver, against TFLite's CPU kernels in the same guest: every per-layer model of MobileDet
and MobileNetV1 in one boot, and whole MobileDet on two photos."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import board
from rknpu import tflite

pytestmark = pytest.mark.boot
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# Lone ADD models: Mesa's rocket cannot fuse them and crashes (its CI skips exactly these).
MESA_CRASHES = {f"mobiledet-{n:03d}" for n in (8, 11, 14, 19, 22, 25, 32, 35, 38, 45, 49, 53,
                                                60, 64, 68)}
PER_LAYER_SH = """for f in /host/m/*.tflite; do
    n=$(basename $f .tflite)
    mkdir -p /host/out/$n/cpu /host/out/$n/npu
    rocket-infer -o /host/out/$n/cpu $f random:7 > /dev/null 2>&1 || echo "$n cpu failed"
    rocket-infer -d /usr/lib/teflon/libteflon.so -o /host/out/$n/npu $f random:7 \\
        > /host/out/$n/npu.log 2>&1 || echo "$n npu failed $?"
done
"""


def models():
    return subprocess.run([os.path.join(ROOT, "scripts", "fetch-models")], check=True,
                          capture_output=True, text=True).stdout.strip()


def pad_lane_quirk(model):
    """A depthwise layer whose PAD_CON1 bytes differ (HARDWARE-UNKNOWNS Q13)."""
    for o in model.operators:
        if o["op"] == "DEPTHWISE_CONV_2D" and o["options"].get("padding") == "SAME":
            zp = int(model.tensors[o["inputs"][0]]["zero_point"][0])
            if ((zp - 0x80) >> 8 & 0xFF) != ((zp - 0x80) & 0xFF):
                return True
    return False


def test_per_layer_models(tmp_path):
    src = models()
    os.makedirs(tmp_path / "m")
    names = sorted(f for f in os.listdir(src) if f.startswith(("mobiledet-", "mb-")))
    for f in names:
        shutil.copy(os.path.join(src, f), tmp_path / "m" / f)
    (tmp_path / "run.sh").write_text(PER_LAYER_SH)
    r = board.boot(str(tmp_path), cores=3, mem="2G", timeout=1200)
    assert r.status == 0, r.log[-2000:]
    report, outside = {}, []
    for f in names:
        n = f[:-7]
        npu = tmp_path / "out" / n / "npu" / "output-0.bin"
        model = tflite.Model(str(tmp_path / "m" / f))
        if not npu.exists():
            assert n in MESA_CRASHES, f"{n}: Teflon failed: {(tmp_path / 'out' / n / 'npu.log').read_text()}"
            report[n] = "mesa crash (lone ADD, skipped by Mesa CI)"
            continue
        a = np.fromfile(tmp_path / "out" / n / "cpu" / "output-0.bin", dtype=np.uint8).astype(int)
        b = np.fromfile(npu, dtype=np.uint8).astype(int)
        d = np.abs(a - b)
        report[n] = {"max_abs_diff": int(d.max()), "frac_off_by_1": round(float((d == 1).mean()), 5),
                     "frac_over_1": round(float((d > 1).mean()), 5)}
        if d.max() > 1:
            if len(model.inputs) > 1:
                report[n]["why"] = "several inputs: rocket-infer fills only the first"
            elif pad_lane_quirk(model):
                report[n]["why"] = "depthwise PAD_CON1 byte lanes (Q13)"
            else:
                outside.append(n)
    with open(os.path.join(board.BUILD, "teflon-per-layer.json"), "w") as f:
        json.dump(report, f, indent=1)
    assert outside == [], f"layers outside ±1 with no explanation: {outside}"


def iou(a, b):
    y0, x0 = max(a[0], b[0]), max(a[1], b[1])
    y1, x1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, y1 - y0) * max(0, x1 - x0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


@pytest.mark.parametrize("photo", ["chelsea", "astronaut"])
def test_mobiledet_whole_model(photo, tmp_path):
    from PIL import Image
    subprocess.run([os.path.join(ROOT, "scripts", "run.py"), "--image", photo, "--invokes", "1"],
                   check=True, capture_output=True)
    run = os.path.join(board.BUILD, "run")
    shutil.copy(os.path.join(run, "input.raw"), tmp_path / "input.raw")
    shutil.copy(os.path.join(models(), "ssdlite_mobiledet_coco_qat_postprocess.tflite"),
                tmp_path / "model.tflite")
    os.makedirs(tmp_path / "cpu")
    (tmp_path / "run.sh").write_text("rocket-infer -o /host/cpu /host/model.tflite "
                                     "/host/input.raw\n")
    r = board.boot(str(tmp_path), cores=1, mem="2G")
    assert r.status == 0, r.log
    npu = [d for d in json.load(open(os.path.join(run, "npu", "summary.json")))["detections"]
           if d["score"] >= 0.4]
    cpu = [d for d in json.load(open(tmp_path / "cpu" / "summary.json"))["detections"]
           if d["score"] >= 0.4]
    assert npu, "no detection on the NPU"
    rows = []
    for d in npu:
        best = max(cpu, key=lambda c: (c["class"] == d["class"]) * iou(c["box"], d["box"]),
                   default=None)
        assert best and best["class"] == d["class"], f"{photo}: NPU class {d['class']} not on CPU"
        rows.append({"class": d["class"], "npu_score": d["score"], "cpu_score": best["score"],
                     "iou": round(iou(best["box"], d["box"]), 3)})
        assert rows[-1]["iou"] > 0.8 and abs(d["score"] - best["score"]) < 0.15, rows[-1]
    with open(os.path.join(board.BUILD, f"mobiledet-{photo}.json"), "w") as f:
        json.dump(rows, f, indent=1)
