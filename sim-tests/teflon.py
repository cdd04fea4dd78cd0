"""Shared pieces of the Teflon tests: the models folder, the host CPU reference (TFLite on the
host, build/host/rocket-infer), replaying captured jobs on the host core, and comparisons."""
import glob
import json
import os
import re
import subprocess

import numpy as np

import board
from mobiledet import models_dir as models  # noqa: F401  (re-exported for the tests)

HOST_INFER = os.path.join(board.BUILD, "host", "rocket-infer")
RKNPU_RUN = os.path.join(board.BUILD, "qemu-hw", "tools", "rknpu-run")
TEFLON = "/usr/lib/teflon/libteflon.so"


def host_infer(model, inputs, outdir, labels=None):
    """The CPU reference on the host; returns its summary.json."""
    os.makedirs(outdir, exist_ok=True)
    cmd = [HOST_INFER, "-o", str(outdir)] + (["-l", labels] if labels else [])
    subprocess.run(cmd + [str(model)] + list(inputs), check=True, capture_output=True)
    with open(os.path.join(outdir, "summary.json")) as f:
        return json.load(f)


QUIRK_RE = re.compile(r"\(quirk ([a-z0-9-]+)\)")


def replay(capture_dir, quirks=None):
    """Replay every captured SUBMIT on the host core (rknpu-run); returns (kicks, BOs compared,
    list of BOs that differ from what the guest's NPU wrote). The names of the hardware quirks
    that fired (HARDWARE-UNKNOWNS Q15) are added to the set `quirks` if one is given."""
    kicks = compared = 0
    differ = []
    for d in sorted(glob.glob(os.path.join(capture_dir, "submit-*"))):
        with open(os.path.join(d, "job.txt")) as f:
            kicks += sum(1 for ln in f if ln.startswith("kick"))
        r = subprocess.run([RKNPU_RUN, "-q", d], capture_output=True, text=True)
        if quirks is not None:
            quirks.update(QUIRK_RE.findall(r.stderr))
        if r.returncode:
            differ.append(f"{d}: rknpu-run failed: {r.stderr[-500:]}")
            continue
        for exp in glob.glob(os.path.join(d, "expected-*.bin")):
            with open(exp, "rb") as a, open(exp.replace("expected-", "out-"), "rb") as b:
                if a.read() != b.read():
                    differ.append(exp)
            compared += 1
    return kicks, compared, differ


def diff_stats(a_path, b_path):
    a = np.fromfile(a_path, dtype=np.uint8).astype(int)
    b = np.fromfile(b_path, dtype=np.uint8).astype(int)
    assert a.shape == b.shape, (a_path, b_path)
    d = np.abs(a - b)
    return {"max_abs_diff": int(d.max()), "frac_off_by_1": round(float((d == 1).mean()), 5),
            "frac_over_1": round(float((d > 1).mean()), 5)}


def iou(a, b):
    y0, x0 = max(a[0], b[0]), max(a[1], b[1])
    y1, x1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, y1 - y0) * max(0, x1 - x0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)
