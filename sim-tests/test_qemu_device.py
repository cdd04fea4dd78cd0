"""rk3588-npu in QEMU, driven over qtest the way the rocket and rockchip-iommu drivers drive it."""
import os
import random
import subprocess
import tempfile
import time

import pytest

import tinyjob
from npu_qtest import (MMU_CLEAR, MMU_CMD, MMU_DTE, MMU_INT_STATUS, MMU_MASK, MMU_PF_ADDR,
                       MMU_RAW, MMU_STATUS, MMU_ZAP_ONE, NPU_BASE, PC_INT_MASK, PC_INT_RAW,
                       PC_INT_STATUS, PC_TASK_CON, PC_TASK_STATUS, PC_VERSION, PC_VERSION_NUM,
                       RAM_BASE, RESET_REG, PageTables, core_base, iommu_banks, iommu_enable,
                       irq_done, kick, load_job, mmu_spi, npu_spi, qemu_binary, read_iova, start,
                       wait_irq, write_iova)

pytestmark = pytest.mark.qemu
RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "qemu-hw", "tools", "rknpu-run"))


@pytest.fixture
def npu():
    q = start()
    yield q
    rc = q.close()
    assert rc == 0, f"QEMU exited with {rc}"


def setup_job(q, core=0, job=None, pool=RAM_BASE + 0x1000000):
    job = job or tinyjob.conv1x1()
    pt = PageTables(q, pool)
    iommu_enable(q, core, pt.dt)
    load_job(q, pt, job)
    return pt, job


def run_job(q, core, pt, job):
    for regcmd, amount, task_con in job["kicks"]:
        kick(q, core, regcmd, amount, task_con)
        wait_irq(q, [npu_spi(core)])
        raw = irq_done(q, core)
        assert raw & 0x300 and not raw & 0x3000, f"raw status 0x{raw:x}"
    return read_iova(q, pt, *job["out"])


def core_reference(job):
    """The same job on the host core model (rknpu-run)."""
    with tempfile.TemporaryDirectory() as d:
        tinyjob.write_job_dir(job, d)
        subprocess.run([RKNPU_RUN, "-q", d], check=True)
        return open(os.path.join(d, "out.bin"), "rb").read()


def test_properties_listed():
    out = subprocess.run([qemu_binary(), "-device", "rk3588-npu,help"], capture_output=True,
                         text=True, check=True).stdout
    for prop in ("cores", "clock-frequency", "dma-bandwidth", "dma-bytes-per-cycle",
                 "task-overhead", "base", "spi-base"):
        assert prop in out


def test_version_and_reset_values(npu):
    for i in range(3):
        b = core_base(i)
        assert npu.readl(b + PC_VERSION) + (npu.readl(b + PC_VERSION_NUM) & 0xFFFF) == 1179210309
        assert npu.readl(b + PC_INT_MASK) == 0x1FFFF
        npu.writel(b + PC_TASK_CON, 0x7001)
        assert npu.readl(b + PC_TASK_CON) == 0x1001


def test_iommu_handshakes(npu):
    """Every register sequence rk_iommu_enable/disable/irq perform, on every bank."""
    pt = PageTables(npu, RAM_BASE + 0x2000000)
    for core in range(3):
        for b in iommu_banks(core):
            assert npu.readl(b + MMU_STATUS) & 0x5 == 0     # after reset: paging, stall off
        iommu_enable(npu, core, pt.dt)
        for b in iommu_banks(core):
            npu.writel(b + MMU_CMD, 2)                      # enable_stall
            assert npu.readl(b + MMU_STATUS) & 0x4
            npu.writel(b + MMU_CMD, 3)                      # disable_stall
            assert not npu.readl(b + MMU_STATUS) & 0x4
            npu.writel(b + MMU_ZAP_ONE, 0x1000)
        # rk_iommu_disable
        for b in iommu_banks(core):
            npu.writel(b + MMU_CMD, 2)
            npu.writel(b + MMU_CMD, 1)
            assert not npu.readl(b + MMU_STATUS) & 1
            npu.writel(b + MMU_MASK, 0)
            npu.writel(b + MMU_DTE, 0)
            npu.writel(b + MMU_CMD, 3)
            assert npu.readl(b + MMU_STATUS) & 0x5 == 0
            assert npu.readl(b + MMU_DTE) == 0
        iommu_enable(npu, core, pt.dt)                      # and again, as every job does


def test_conv_through_iommu(npu):
    pt, job = setup_job(npu)
    out = run_job(npu, 0, pt, job)
    assert out == job["expect"]
    assert out == core_reference(job)
    assert npu.readl(core_base(0) + PC_TASK_STATUS) == 0xF000


def test_page_walk_above_4g():
    """Page tables and pages above 4 GiB: the v2 encoding of PA[39:32]."""
    q = start(mem="5G")
    try:
        pt, job = setup_job(q, pool=0x1_2000_0000)
        assert pt.dt >= 1 << 32
        assert run_job(q, 0, pt, job) == job["expect"]
    finally:
        assert q.close() == 0


def test_page_fault_on_write(npu):
    job = tinyjob.conv1x1()
    out_iova, out_size = job["out"]
    job["segments"].pop(out_iova)                           # output left unmapped
    pt, _ = setup_job(npu, job=job)
    kick(npu, 0, *job["kicks"][0])
    wait_irq(npu, [npu_spi(0), mmu_spi(npu, 0)])
    for b in iommu_banks(0):
        assert npu.readl(b + MMU_RAW) & 1
        assert npu.readl(b + MMU_INT_STATUS) & 1
        assert npu.readl(b + MMU_PF_ADDR) == out_iova
        assert npu.readl(b + MMU_STATUS) & 0x22 == 0x22     # fault active, is write
    raw = irq_done(npu, 0)
    assert raw & 0x2000 and raw & 0x300                     # DMA write error + completion
    for b in iommu_banks(0):                                # rk_iommu_irq
        npu.writel(b + MMU_CMD, 4)
        npu.writel(b + MMU_CMD, 5)
        npu.writel(b + MMU_CLEAR, npu.readl(b + MMU_INT_STATUS))
        assert npu.readl(b + MMU_STATUS) & 0x22 == 0
    assert not npu.irq(mmu_spi(npu, 0))
    pt.map_range(out_iova, out_size)                        # the next good job passes
    assert run_job(npu, 0, pt, job) == job["expect"]


def test_permission_fault(npu):
    job = tinyjob.conv1x1()
    out_iova, out_size = job["out"]
    job["segments"].pop(out_iova)
    pt, _ = setup_job(npu, job=job)
    pt.map_range(out_iova, out_size, perm=0x2)              # readable only
    kick(npu, 0, *job["kicks"][0])
    wait_irq(npu, [npu_spi(0), mmu_spi(npu, 0)])
    assert npu.readl(iommu_banks(0)[0] + MMU_PF_ADDR) == out_iova
    assert irq_done(npu, 0) & 0x2000


def test_irq_level_rules(npu):
    pt, job = setup_job(npu)
    b = core_base(0)
    kick(npu, 0, *job["kicks"][0])
    wait_irq(npu, [npu_spi(0)])
    npu.writel(b + PC_INT_MASK, 0)
    assert not npu.irq(npu_spi(0))                          # MASK=0 drops the line
    npu.writel(b + PC_INT_MASK, 0x300)
    assert npu.irq(npu_spi(0))
    irq_done(npu, 0)
    assert not npu.irq(npu_spi(0))
    # an error-only status never raises the line: TASK_NUMBER 0 sets bit 12 (and DPU_0)
    kick(npu, 0, job["kicks"][0][0], 64, task_con=0x7000)
    npu.writel(b + PC_INT_MASK, 0x3000)
    # the core's worker thread answers the kick; its result reaches the registers from QEMU's
    # main loop, so poll for it (bounded) rather than expect it on the very next access
    for _ in range(200):
        if npu.readl(b + PC_INT_RAW) & 0x1000:
            break
        time.sleep(0.01)
    assert npu.readl(b + PC_INT_RAW) & 0x1000
    npu.clock_step(10_000_000)
    assert npu.readl(b + PC_INT_STATUS) == 0x1000
    assert not npu.irq(npu_spi(0))


def test_reset_during_task(npu):
    job = tinyjob.conv1x1(w=64, h=64, c=256, k=256)          # long enough to be in flight
    pt, _ = setup_job(npu, job=job)
    kick(npu, 0, *job["kicks"][0])
    npu.writel(RESET_REG, 0x3)                              # srst_a + srst_h of core 0
    assert npu.readl(core_base(0) + PC_INT_MASK) == 0x1FFFF
    npu.writel(RESET_REG, 0)
    for _ in range(50):
        try:
            npu.clock_step(1_000_000_000)
        except Exception:
            time.sleep(0.01)
    assert not npu.irq(npu_spi(0))                          # the abandoned task never completes
    assert npu.readl(core_base(0) + PC_INT_RAW) == 0
    assert run_job(npu, 0, pt, job) == job["expect"]        # and the core works afterwards


def test_three_cores_at_once(npu):
    jobs = []
    for core in range(3):
        job = tinyjob.conv1x1(w=32, h=32, c=64, k=64, seed=core, base=0x100000 * (core + 1))
        pt = PageTables(npu, RAM_BASE + 0x1000000 * (core + 1))
        iommu_enable(npu, core, pt.dt)
        load_job(npu, pt, job)
        jobs.append((pt, job))
    for core, (pt, job) in enumerate(jobs):
        kick(npu, core, *job["kicks"][0])
    wait_irq(npu, [npu_spi(c) for c in range(3)])
    for core, (pt, job) in enumerate(jobs):
        assert irq_done(npu, core) & 0x300
        assert read_iova(npu, pt, *job["out"]) == job["expect"]


def test_device_tree_nodes(tmp_path):
    dtb, dts = tmp_path / "virt.dtb", tmp_path / "virt.dts"
    subprocess.run([qemu_binary(), "-M", f"virt,dumpdtb={dtb}", "-display", "none", "-nodefaults",
                    "-m", "5G", "-device", "rk3588-npu"], check=True, capture_output=True)
    subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", "-o", str(dts), str(dtb)], check=True)
    text = dts.read_text()
    assert text.count('compatible = "rockchip,rk3588-rknn-core"') == 3
    assert text.count('"rockchip,rk3588-iommu\\0rockchip,rk3568-iommu"') == 3
    assert 'compatible = "snps,dw-high-reset"' in text
    assert 'reg-names = "pc\\0cna\\0core"' in text
    assert 'reset-names = "srst_a\\0srst_h"' in text
    assert "npu@a100000" in text and "iommu@a109000" in text


def test_savevm_loadvm_mid_task(tmp_path):
    """Migrate to a file with a task in flight; the restored VM completes it exactly once."""
    state = tmp_path / "state"
    job = tinyjob.conv1x1(w=64, h=64, c=256, k=256)
    q = start()
    try:
        pt, _ = setup_job(q, job=job)
        kick(q, 0, *job["kicks"][0])
        q.qmp("migrate", uri=f"exec:cat > {state}")
        for _ in range(500):
            if q.qmp("query-migrate").get("status") == "completed":
                break
            time.sleep(0.02)
        assert q.qmp("query-migrate")["status"] == "completed"
    finally:
        q.close()
    q2 = start(extra=["-incoming", f"exec:cat {state}"])
    try:
        for _ in range(500):
            if q2.qmp("query-status")["status"] != "inmigrate":
                break
            time.sleep(0.02)
        q2.qmp("cont")
        wait_irq(q2, [npu_spi(0)])
        assert irq_done(q2, 0) & 0x300
        pt2 = pt
        pt2.q = q2
        assert read_iova(q2, pt2, *job["out"]) == job["expect"]
        q2.clock_step(1_000_000_000)
        assert not q2.irq(npu_spi(0))                       # no second completion
    finally:
        assert q2.close() == 0


def test_stress_random_writes_keep_qemu_running(npu):
    """>= 10 000 random register writes and random regcmd buffers; QEMU must stay up."""
    rng = random.Random(1234)
    pt, job = setup_job(npu)
    junk_iova = 0x400000
    pt.map_range(junk_iova, 0x4000)
    windows = [core_base(i) + off for i in range(3) for off in (0, 0x1000, 0x3000, 0x4000, 0x5000)]
    for n in range(10_000):
        r = rng.random()
        if r < 0.85:
            addr = rng.choice(windows) + rng.randrange(0, 0x1000, 4)
            npu.writel(addr, rng.getrandbits(32))
        elif r < 0.9:
            bank = rng.choice(iommu_banks(rng.randrange(3)))
            npu.writel(bank + rng.randrange(0, 0x28, 4), rng.getrandbits(32))
        elif r < 0.93:
            write_iova(npu, pt, junk_iova, rng.randbytes(0x4000))
            kick(npu, rng.randrange(3), junk_iova + rng.randrange(0, 0x3000, 16), rng.randrange(200),
                 0x7000 | rng.randrange(4))
        elif r < 0.95:
            npu.writel(RESET_REG, rng.getrandbits(6))
        else:
            try:
                npu.clock_step(rng.randrange(1, 5_000_000))
            except Exception:
                pass
    assert npu.alive()
    # recover like the driver's timeout handler, then a good job still passes
    npu.writel(RESET_REG, 0x3F)
    npu.writel(RESET_REG, 0)
    pt2, job2 = setup_job(npu, job=tinyjob.conv1x1(seed=9, base=0x800000),
                          pool=RAM_BASE + 0x3000000)
    assert run_job(npu, 0, pt2, job2) == job2["expect"]
