"""The datapaths beyond Mesa's (issue 13) through the real kernel driver: rocket-smoke
(driver/tests) submits one task of each kind through the rocket UAPI in the emulated board and
compares what the NPU wrote with what the independent reference (rknpu/hwref.py, hwflying.py)
computed on the host — int8 EW mul, fp16 EW add, the LUT sigmoid (DPU-only tasks), the raw int32
accumulator and an int16 output of a convolution."""
import os

import numpy as np
import pytest

import board
import test_flying as fl
import test_outputs as ou
import tinyjob
from rknpu import hwref

pytestmark = pytest.mark.boot
AT = {"regcmd": 0x0, "main": 0x10000, "operand": 0x20000, "out": 0x30000}   # from IOVA 0


def jobs():
    rng = np.random.default_rng(21)
    a8 = rng.integers(-128, 128, (4, 6, 40)).astype(np.int8)
    b8 = rng.integers(-128, 128, (4, 6, 40)).astype(np.int8)
    ah = rng.normal(0, 20, (3, 8, 16)).astype(np.float16)
    bh = rng.normal(0, 20, (3, 8, 16)).astype(np.float16)
    lut, regs = fl.sigmoid_regs()
    x = np.linspace(-6, 6, 256).astype(np.float16).reshape(1, 32, 8)
    return {
        "ew-mul-int8": fl.job("int8", a8, fl.ew(1, 0, 1), b8, at=AT),
        "ew-add-fp16": fl.job("fp16", ah, fl.ew(0, 2, 2), bh, at=AT),
        "lut-sigmoid-fp16": fl.job("fp16", x, 0x300, lut=lut, extra=regs, at=AT),
        "conv-int32-raw": ou.job("int32", base=0),
        "conv-int16": ou.job("int16", shift=4, base=0),
    }


def test_new_datapaths_through_the_driver(tmp_path):
    names = []
    for name, j in jobs().items():
        d = str(tmp_path / name)
        tinyjob.write_job_dir(j, d)          # job.txt, the segments; dump out.bin = expected
        mem, status = hwref.run_job(j["segments"], j["kicks"])
        assert status == [0x100], (name, status)
        with open(os.path.join(d, "out.bin"), "wb") as f:
            f.write(mem.read(*j["out"]))
        names.append(f"/host/{name}")
    (tmp_path / "run.sh").write_text(f"rocket-smoke -p {' '.join(names)}\n")
    r = board.boot(str(tmp_path), cores=1, mem="1G")
    where = f"\n--- log ---\n{r.log[-3000:]}\n--- dmesg ---\n{r.dmesg[-2000:]}"
    assert r.status == 0, "rocket-smoke failed" + where
    assert board.kernel_problems(r.dmesg) == [], where
    for n in names:
        assert f"{n}" in r.log and "not ok" not in r.log, where
