"""Job capture in the guest (userspace/rocket-capture.c, an LD_PRELOAD shim on the rocket ioctls)
and bit-exact replay of the captured MobileDet jobs on the host core (rknpu-run), on the kernel
path the host picks and again on every lesser one it runs (RKNPU_ISA)."""
import glob
import os
import platform
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
        # the host's kernel path (the device's), then every lesser one it runs, then an AVX2-only
        # CPU model under qemu-user (x86-64 hosts): the same bytes
        for isa, cmd in [(None, [])] + [(p, []) for p in lesser_paths()] + cpu_models():
            env = dict(os.environ, **({"RKNPU_ISA": isa} if isa and not cmd else {}))
            res = subprocess.run(cmd + [RKNPU_RUN, "-q", d], capture_output=True, text=True,
                                 env=env)
            assert res.returncode == 0, (isa, res.stderr[-2000:])
            for exp in glob.glob(os.path.join(d, "expected-*.bin")):
                out = exp.replace("expected-", "out-")
                with open(exp, "rb") as a, open(out, "rb") as b:
                    assert a.read() == b.read(), f"{out} ({isa or 'host path'}) differs"
                compared += isa is None
    assert kicks == 113 and compared >= 90, (kicks, compared)


def lesser_paths():
    """The kernel paths this host runs other than the one it picks (test-kernels --info)."""
    info = subprocess.run([os.path.join(board.BUILD, "qemu-hw", "tests", "test-kernels"),
                           "--info"], capture_output=True, text=True, check=True).stdout
    using = next(ln.split()[1] for ln in info.splitlines() if ln.startswith("kernels:"))
    paths = next(ln.split()[1:] for ln in info.splitlines() if ln.startswith("paths:"))
    return [p for p in paths if p != using and "(cannot run)" not in p]


def cpu_models():
    """(label, command prefix): a Zen 3 model (AVX2, no AVX-512) on x86-64 hosts with qemu-user."""
    if platform.machine() != "x86_64" or not shutil.which("qemu-x86_64"):
        return []
    return [("qemu-x86_64 -cpu EPYC-Milan", ["qemu-x86_64", "-cpu", "EPYC-Milan"])]
