#!/usr/bin/python3
"""`make run` until the guest boots: one convolution through the core model on the host, and the
same job through rk3588-npu in QEMU (driven over qtest as the Linux drivers would), compared."""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "sim-tests"))
import tinyjob  # noqa: E402
from npu_qtest import (PageTables, RAM_BASE, iommu_enable, irq_done, kick, load_job,  # noqa: E402
                       npu_spi, read_iova, start, wait_irq)


def main():
    job = tinyjob.conv1x1(w=40, h=40, c=128, k=256, seed=7)
    print("rocketsim: a 40x40x128 -> 256 1x1 convolution, built by hand (not Mesa yet)")
    with tempfile.TemporaryDirectory() as d:
        tinyjob.write_job_dir(job, d)
        res = subprocess.run([os.path.join(ROOT, "build/qemu-hw/tools/rknpu-run"), d],
                             capture_output=True, text=True)
        print("host core model (rknpu-run):\n  " + res.stdout.strip())
        host = open(os.path.join(d, "out.bin"), "rb").read()
    t0 = time.monotonic()
    q = start(cores=3)
    try:
        pt = PageTables(q, RAM_BASE + 0x1000000)
        iommu_enable(q, 0, pt.dt)
        load_job(q, pt, job)
        kick(q, 0, *job["kicks"][0])
        wait_irq(q, [npu_spi(0)])
        raw = irq_done(q, 0)
        out = read_iova(q, pt, *job["out"])
    finally:
        q.close()
    print(f"QEMU rk3588-npu core 0 through its IOMMU: raw status 0x{raw:05x}, "
          f"{time.monotonic() - t0:.2f} s wall")
    same = out == host == job["expect"]
    print(f"outputs: QEMU == host core == numpy reference: {same}")
    print("Not yet: booting Linux with rocket and running MobileDet through Mesa Teflon.")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
