"""Job capture in the guest (userspace/rocket-capture.c, an LD_PRELOAD shim on the rocket ioctls)
and bit-exact replay of the captured MobileDet jobs on the host core (rknpu-run)."""
import glob
import os
import shutil
import subprocess

import pytest

import board
from teflon import models

pytestmark = pytest.mark.boot
RKNPU_RUN = os.path.join(board.BUILD, "qemu-hw", "tools", "rknpu-run")


def test_capture_mobiledet_and_replay(tmp_path):
    shutil.copy(os.path.join(models(), "ssdlite_mobiledet_coco_qat_postprocess.tflite"),
                tmp_path / "model.tflite")
    (tmp_path / "run.sh").write_text(
        "ROCKET_CAPTURE_DIR=/host/cap LD_PRELOAD=/usr/bin/rocket-capture.so rocket-infer "
        "-d /usr/lib/teflon/libteflon.so -o /host /host/model.tflite random:3\n")
    r = board.boot(str(tmp_path), cores=3, mem="2G")
    assert r.status == 0, r.log
    submits = sorted(glob.glob(str(tmp_path / "cap" / "submit-*")))
    assert submits, "nothing captured"
    kicks = compared = 0
    for d in submits:
        kicks += sum(1 for ln in open(os.path.join(d, "job.txt")) if ln.startswith("kick"))
        res = subprocess.run([RKNPU_RUN, "-q", d], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        for exp in glob.glob(os.path.join(d, "expected-*.bin")):
            out = exp.replace("expected-", "out-")
            with open(exp, "rb") as a, open(out, "rb") as b:
                assert a.read() == b.read(), f"{out} differs from the guest's"
            compared += 1
    assert kicks == 113 and compared >= 90, (kicks, compared)
