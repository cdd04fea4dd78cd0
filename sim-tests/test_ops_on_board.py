"""The datapaths beyond Mesa's (issue 13) through the real kernel driver: rocket-smoke
(driver/tests) submits one task of each kind through the rocket UAPI in the emulated board and
compares what the NPU wrote with what the independent reference (rknpu/hwref.py, hwflying.py)
computed on the host — int8 EW mul, fp16 EW add, the LUT sigmoid (DPU-only tasks), the raw int32
accumulator and an int16 output of a convolution, fp16 and int4 matmuls, an fp16 K accumulation
chained in one kick, and max and average pooling (PPU tasks). A pool
task raises PPU_0/PPU_1, not a DPU bit (HARDWARE-UNKNOWNS Q16), and mainline rocket waits for DPU
bits only: each pool job times out after 500 ms and the core is reset — as on a board under
mainline — while its output is already right."""
import os

import numpy as np
import pytest

import board
import precjob
import test_flying as fl
import test_outputs as ou
import tinyjob
from rknpu import hwref, pooljob

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
        "matmul-fp16": precjob.matmul_job("fp16", rng.normal(0, 1, (8, 1, 64)),
                                          rng.normal(0, 1, (32, 64)), base=0),
        "matmul-int4": precjob.matmul_job("int4", rng.integers(-8, 8, (8, 1, 64)),
                                          rng.integers(-8, 8, (64, 64)), base=0),
        "kacc-fp16-chained": one_kick_per_task(precjob.kacc_job(
            rng.normal(0, 1, (16, 1, 128)), rng.normal(0, 1, (32, 128)), 4, base=0), 4),
    }


def one_kick_per_task(j, n):
    """Mainline rocket kicks one task at a time (TASK_NUMBER 1): the K-accumulation chain as the
    driver runs it, task k reading task k-1's partial from memory (its in-stream link unused)."""
    rcs = [i * 0x1000 for i in range(n)]            # kacc_job's regcmd buffers, from base 0
    j["kicks"] = [(rc, len(j["segments"][rc]) // 16 - 1, 0x7001) for rc in rcs]
    return j


def pool_jobs():
    rng = np.random.default_rng(22)
    x8 = rng.integers(-128, 128, (9, 9, 24)).astype(np.int8)
    xh = rng.normal(0, 4, (8, 8, 16)).astype(np.float16)
    return {"pool-max-int8": pooljob.pool_job(x8, "max", (3, 3), (2, 2), base=0),
            "pool-avg-fp16": pooljob.pool_job(xh, "avg", (2, 2), base=0)}


def share(tmp_path, todo):
    """Job folders whose dump (out.bin) is what the reference computed."""
    names = []
    for name, j in todo.items():
        d = str(tmp_path / name)
        tinyjob.write_job_dir(j, d)
        mem, status = hwref.run_job(j["segments"], j["kicks"])
        assert status[0] & 0xF00, (name, status)   # a completion bit, no error
        with open(os.path.join(d, "out.bin"), "wb") as f:
            f.write(mem.read(*j["out"]))
        names.append(f"/host/{name}")
    return names


def test_new_datapaths_through_the_driver(tmp_path):
    names, pools = share(tmp_path, jobs()), share(tmp_path, pool_jobs())
    (tmp_path / "run.sh").write_text(
        f"rocket-smoke -p {' '.join(names)}; rc1=$?\ndmesg > /host/dpu.dmesg\n"
        f"rocket-smoke -p {' '.join(pools)}; rc2=$?\nexit $((rc1 | rc2))\n")
    r = board.boot(str(tmp_path), cores=1, mem="1G")
    where = f"\n--- log ---\n{r.log[-3000:]}\n--- dmesg ---\n{r.dmesg[-2000:]}"
    assert r.status == 0, "rocket-smoke failed (an output differs from the reference)" + where
    assert "not ok" not in r.log and all(n in r.log for n in names + pools), where
    assert board.kernel_problems((tmp_path / "dpu.dmesg").read_text()) == [], where
    pool_log = r.dmesg[len((tmp_path / "dpu.dmesg").read_text()):]
    assert "timed out" in pool_log, "a pool job completed under mainline rocket?" + where
