"""Boot the real kernel with the upstream rocket and rockchip-iommu drivers on rk3588-npu, and run
rocket-smoke (driver/tests) against jobs whose outputs the host computed with the core model."""
import json
import os
import re
import subprocess

import pytest

import board
import tinyjob

pytestmark = pytest.mark.boot
RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(board.BUILD, "qemu-hw", "tools",
                                                      "rknpu-run"))
TIMES = os.path.join(board.BUILD, "boot-times.json")

RUN_SH = """\
dmesg > /host/boot.dmesg
ls -l /dev/accel/
rocket-smoke -p /host/job1 /host/job2; rc1=$?
dmesg > /host/positive.dmesg
rocket-smoke -n /host/job1; rc2=$?
exit $((rc1 | rc2))
"""


def make_jobs(share):
    """Two guest jobs at IOVAs from 0 (as rocket assigns them), expected outputs from the core."""
    jobs = {"job1": tinyjob.conv1x1(w=16, h=16, c=64, k=96, seed=11, base=0),
            "job2": tinyjob.conv1x1(w=8, h=8, c=32, k=64, seed=12, base=0, tasks=2)}
    for name, job in jobs.items():
        d = os.path.join(share, name)
        tinyjob.write_job_dir(job, d)
        subprocess.run([RKNPU_RUN, "-q", d], check=True)        # writes d/out.bin
        with open(os.path.join(d, "out.bin"), "rb") as f:
            assert f.read() == job["expect"], "host core model vs numpy"


def record_time(key, value):
    times = {}
    if os.path.exists(TIMES):
        with open(TIMES) as f:
            times = json.load(f)
    times[key] = round(value, 2)
    with open(TIMES, "w") as f:
        json.dump(times, f, indent=1, sort_keys=True)


@pytest.mark.parametrize("cores,mem", [(1, "1G"), (3, "1G"), (1, "5G"), (3, "5G")])
def test_boot_and_smoke(tmp_path, cores, mem):
    share = str(tmp_path)
    make_jobs(share)
    with open(os.path.join(share, "run.sh"), "w") as f:
        f.write(RUN_SH)
    r = board.boot(share, cores=cores, mem=mem)
    where = f"\n--- console ---\n{r.console[-3000:]}\n--- log ---\n{r.log[-3000:]}"
    boot_dmesg = (tmp_path / "boot.dmesg").read_text() if (tmp_path / "boot.dmesg").exists() else ""
    for i in range(cores):
        assert re.search(rf"Rockchip NPU core {i} version: 1179210309", boot_dmesg), \
            f"core {i} did not probe" + where
    assert "/dev/accel/accel0" in r.console, "no /dev/accel/accel0" + where
    assert board.kernel_problems(boot_dmesg) == [], "boot log" + where
    positive = (tmp_path / "positive.dmesg").read_text()
    assert board.kernel_problems(positive) == [], "kernel complained during good jobs" + where
    # the negative checks may WARN (DMA error bits), fault in the IOMMU, or time out (garbage
    # regcmds can hang the hardware, the driver resets it): never crash the kernel
    assert not re.search(r"BUG:|Oops|Unable to handle|Kernel panic", r.dmesg), where
    assert r.status == 0, "rocket-smoke failed" + where
    assert r.ready > 0
    record_time(f"boot-to-ready {cores} cores {mem}", r.ready)
    record_time(f"whole run {cores} cores {mem}", r.wall)
    print(f"boot-to-ready {r.ready:.2f} s, whole run {r.wall:.2f} s")


@pytest.mark.parametrize("shift", [4, 7])
def test_smoke_under_icount(tmp_path, shift):
    """With -icount (sleep=off) virtual time must not outrun the NPU's arithmetic."""
    share = str(tmp_path)
    make_jobs(share)
    (tmp_path / "run.sh").write_text("rocket-smoke -p /host/job1 /host/job2\n")
    r = board.boot(share, cores=3, icount=shift)
    assert r.status == 0 and "timed out" not in r.dmesg, r.log + r.console[-2000:]
