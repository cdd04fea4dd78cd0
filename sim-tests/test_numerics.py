"""Differential tests of the NPU arithmetic: ops programmed as Mesa programs them run on the C core
(rknpu-run) and on the independent Python reference (rknpu/hwref.py) and must be bit-identical;
both stay within ±1 of plain TFLite uint8 math except where spec §5.10 / HARDWARE-UNKNOWNS say
the hardware model deviates (each such case is named below)."""
import os
import subprocess

import numpy as np
import pytest

import tinyjob
from rknpu import hwref, mesagen as mg, mesatask as mt, tfl_ref

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "qemu-hw", "tools", "rknpu-run"))


def random_op(seed):
    """A random conv / depthwise / conv+add op in the ranges Mesa handles."""
    rng = np.random.default_rng(seed)
    dw = rng.random() < 0.35
    k = int(rng.choice([1, 3, 5])) if not dw else int(rng.choice([3, 5]))
    s = int(rng.choice([1, 2]))
    h = int(rng.integers(max(k, 3), 24))
    c = int(rng.choice([1, 3, 8, 16, 24, 32, 40, 48, 64, 72, 96, 120, 128, 256])) if not dw \
        else int(rng.choice([8, 16, 32, 40, 64, 72, 96, 128, 144, 256]))
    oc = c if dw else int(rng.choice([1, 8, 16, 24, 32, 40, 64, 96, 128, 160, 256]))
    same = rng.random() < 0.7
    if same:
        total = max((-(-h // s) - 1) * s + k - h, 0)
        pads = (total // 2, total - total // 2, total // 2, total - total // 2)
    else:
        pads = (0, 0, 0, 0)
    x = rng.integers(0, 256, (h, h, c), dtype=np.uint8)
    w = rng.integers(0, 256, (k, k, c) if dw else (oc, k, k, c), dtype=np.uint8)
    bias = rng.integers(-3000, 3000, oc, dtype=np.int32)
    s_in, s_w = float(rng.uniform(0.005, 0.05)), float(rng.uniform(0.001, 0.02))
    s_out = float(s_in * s_w * np.sqrt(k * k * (1 if dw else c)) * rng.uniform(80, 300))
    op = mg.conv_op(x, w, bias, s_in, int(rng.integers(0, 256)), s_w, int(rng.integers(0, 256)),
                    s_out, int(rng.integers(0, 256)), s, pads, dw)
    if not dw and c > 1 and rng.random() < 0.25:
        g = mg.geometry(op)
        y = rng.integers(0, 256, (g["ho"], g["wo"], oc), dtype=np.uint8)
        op["add"] = (y, float(s_out * rng.uniform(0.5, 2)), int(rng.integers(0, 256)))
    return op


def run_core(job, tmp_path):
    d = str(tmp_path / "job")
    tinyjob.write_job_dir(job, d)
    res = subprocess.run([RKNPU_RUN, "-q", d], capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr
    with open(os.path.join(d, "out.bin"), "rb") as f:
        return f.read(), res.returncode


def deviation_reason(op, quirks=()):
    """Why the hardware model may leave TFLite's ±1 for this op (spec §5.10, Q5, Q13, Q15), or
    None. quirks: the Q15 quirks that fired on its tasks (hwref's report)."""
    g = mg.geometry(op)
    data_quirks = [q for q in quirks if q != "odd-kernels"]
    if data_quirks:
        return f"hardware quirk {', '.join(data_quirks)} (Q15), e.g. Mesa's DATA_ENTRIES for " \
               "C % 64 in 33..48 (a % 4 = 3) is short"
    if op["add"] is not None:
        return "fused add requantises with the conv's own scale (Mesa) and pads with 0x80"
    if op["dw"] and any(op["pads"]) and (mg.pad_value(op, g) >> 8 & 0xFF) != \
            (mg.pad_value(op, g) & 0xFF):
        return "depthwise pad byte lanes (Q13): PAD_CON1 byte 1 differs from byte 0"
    if not op["dw"] and 16 < g["c"] < 32 and g["c"] % 16:
        return "conv weight rows: Mesa packs C bytes, the hardware reads align16(C) (Q5)"
    if op["dw"] and g["c"] % 64 and (g["c"] % 64) % 16 and g["c"] % 64 > 16:
        return "depthwise weight rows: Mesa's group width differs from the hardware's (Q5)"
    if op["dw"] and g["c"] % 64 and 16 < g["c"] % 64 < 48 and g["c"] > 16:
        return "depthwise group width 64 in Mesa's packing vs Cal remainder (Q5)"
    if g["one"]:
        return "1-channel input path"
    if op["dw"] and g["oc"] <= 16:
        return "depthwise with OC <= 16 writes 64 channels past the output BO (Q11)"
    return None


def check_op(op, tmp_path, label):
    """Core vs reference bit-exact; vs TFLite within ±1 unless deviation_reason() explains."""
    job = mt.build_job(op)
    report = []
    mem, status = hwref.run_job(job["segments"], job["kicks"], report=report)
    ref_raw = mem.read(*job["out"])
    core_raw, rc = run_core(job, tmp_path)
    assert core_raw == ref_raw, f"{label}: core and reference differ"
    errors = [s for s in status if s & 0x3000]
    hangs = [t for t in report if t["hang"]]
    assert (rc == 1) == bool(errors or hangs)
    why = deviation_reason(op, {q for t in report for q in t["quirks"]})
    if errors:
        assert why, f"{label}: unexpected DMA error 0x{errors[0]:x}"
        return
    npu = mt.read_output(job, ref_raw).astype(int)
    tfl, _ = tfl_ref.conv(op["x"], op["w"], op["bias"], op["zp_in"], op["zp_w"], op["s_in"],
                          op["s_w"], op["s_out"], op["zp_out"], op["stride"], op["pads"], op["dw"])
    diff = np.abs(npu - tfl.astype(int))
    if why is None:
        assert diff.max() <= 1, f"{label}: |NPU - TFLite| up to {diff.max()}"


@pytest.mark.parametrize("seed", range(60))
def test_core_matches_reference_and_tflite(seed, tmp_path):
    check_op(random_op(seed), tmp_path, f"seed {seed}")


def test_multi_task_split_is_exact(tmp_path):
    """A 160x160 layer splits into height bands; bands must stitch exactly."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (160, 160, 16), dtype=np.uint8)
    w = rng.integers(0, 256, (32, 3, 3, 16), dtype=np.uint8)
    op = mg.conv_op(x, w, rng.integers(-999, 999, 32, dtype=np.int32), 0.02, 120, 0.004, 131,
                    0.05, 100, 1, (1, 1, 1, 1))
    job = mt.build_job(op)
    assert job["tasks"] > 1
    mem, status = hwref.run_job(job["segments"], job["kicks"])
    core_raw, rc = run_core(job, tmp_path)
    assert rc == 0 and core_raw == mem.read(*job["out"])
    tfl, _ = tfl_ref.conv(x, w, op["bias"], 120, 131, 0.02, 0.004, 0.05, 100, 1, (1, 1, 1, 1))
    assert np.abs(mt.read_output(job, core_raw).astype(int) - tfl).max() <= 1


def test_reference_reports_dma_errors():
    job = tinyjob.conv1x1()
    out_iova, _ = job["out"]
    segs = dict(job["segments"])
    segs.pop(out_iova)
    _, status = hwref.run_job(segs, job["kicks"])
    assert status[0] & 0x2000
    job = tinyjob.conv1x1()
    segs = {a: d for a, d in job["segments"].items() if a != min(job["segments"]) + 0x1000}
    _, status = hwref.run_job(segs, job["kicks"])
    assert status[0] & 0x1000
