"""Helpers for driving the rk3588-npu devices over qtest the way the Linux drivers do."""
import os
import time

from qtest import QEMU, QTestError

ROOT = os.path.join(os.path.dirname(__file__), "..")
QEMU_BIN = os.environ.get("QEMU_BIN", os.path.join(ROOT, "build", "qemu-system-aarch64"))

NPU_BASE = 0x0A100000
CORE_STRIDE = 0x10000
RESET_REG = NPU_BASE + 0x30000
SPI_BASE = 176
RAM_BASE = 0x40000000

# PC registers (qemu-hw/core/rknpu-regs.def) and IOMMU registers (hardware-notes §5)
PC_VERSION, PC_VERSION_NUM, PC_OP_EN, PC_BASE, PC_AMOUNTS = 0x0, 0x4, 0x8, 0x10, 0x14
PC_INT_MASK, PC_INT_CLEAR, PC_INT_STATUS, PC_INT_RAW = 0x20, 0x24, 0x28, 0x2C
PC_TASK_CON, PC_TASK_DMA_BASE, PC_TASK_STATUS = 0x30, 0x34, 0x3C
CNA_S_POINTER, CORE_S_POINTER = 0x1004, 0x3004
MMU_DTE, MMU_STATUS, MMU_CMD, MMU_PF_ADDR, MMU_ZAP_ONE = 0x0, 0x4, 0x8, 0xC, 0x10
MMU_RAW, MMU_CLEAR, MMU_MASK, MMU_INT_STATUS, MMU_GATING = 0x14, 0x18, 0x1C, 0x20, 0x24


def qemu_binary():
    if not os.path.exists(QEMU_BIN):
        raise FileNotFoundError(f"{QEMU_BIN} missing: run `make qemu` first")
    return QEMU_BIN


def start(cores=3, mem="1G", extra=()):
    q = QEMU(qemu_binary(), ["-device", f"rk3588-npu,id=npu,cores={cores}", *extra], mem=mem)
    q.cores = cores
    q.intercept_gic()
    return q


def core_base(i):
    return NPU_BASE + i * CORE_STRIDE


def iommu_banks(i):
    b = core_base(i)
    return [b + 0x9000, b + 0xA000] if i == 0 else [b + 0xA000]


def npu_spi(i):
    return SPI_BASE + i


def mmu_spi(q, i):
    return SPI_BASE + q.cores + i


def v2(pa):
    """Rockchip IOMMU v2 entry encoding of a 40-bit physical address."""
    return (pa & 0xFFFFF000) | ((pa >> 32) & 0xF) << 8 | ((pa >> 36) & 0xF) << 4


class PageTables:
    """A two-level Rockchip page table in guest RAM, built like rockchip-iommu.c does."""

    def __init__(self, q, pool_pa):
        self.q, self.next = q, pool_pa
        self.dt = self.alloc()
        self.pts = {}
        self.pages = {}   # iova page -> pa

    def alloc(self, pages=1):
        pa, self.next = self.next, self.next + 0x1000 * pages
        self.q.memwrite(pa, bytes(0x1000 * pages))
        return pa

    def map(self, iova, pa, perm=0x6):
        di, pi = iova >> 22, (iova >> 12) & 0x3FF
        if di not in self.pts:
            self.pts[di] = self.alloc()
            self.q.writel(self.dt + 4 * di, v2(self.pts[di]) | 1)
        self.q.writel(self.pts[di] + 4 * pi, (v2(pa) | perm | 1) if perm is not None else 0)
        self.pages[iova >> 12] = pa

    def map_range(self, iova, size, perm=0x6):
        """Back [iova, iova + size) with pages, reusing pages already mapped."""
        for page in range(iova >> 12, (iova + size + 0xFFF) >> 12):
            if page not in self.pages:
                self.map(page << 12, self.alloc(), perm)


def iommu_enable(q, core, dt_pa):
    """rk_iommu_enable(): force reset, program the DT, zap, unmask, enable paging."""
    banks = iommu_banks(core)
    for b in banks:
        q.writel(b + MMU_DTE, 0xCAFEB000)
        assert q.readl(b + MMU_DTE) == 0xCAFEB000, "DTE_ADDR read-back"
    for b in banks:
        q.writel(b + MMU_CMD, 6)
    for b in banks:
        assert q.readl(b + MMU_DTE) == 0, "FORCE_RESET must clear DTE_ADDR at once"
    for b in banks:
        q.writel(b + MMU_DTE, v2(dt_pa) | 1)
        q.writel(b + MMU_CMD, 4)
        q.writel(b + MMU_MASK, 3)
        q.writel(b + MMU_GATING, q.readl(b + MMU_GATING) | 1 << 31)
    for b in banks:
        q.writel(b + MMU_CMD, 0)
    for b in banks:
        assert q.readl(b + MMU_STATUS) & 1, "paging enabled at once"


def kick(q, core, regcmd_iova, amount, task_con=0x7001):
    """rocket_job_hw_submit()."""
    b = core_base(core)
    q.writel(b + PC_BASE, 1)
    q.writel(b + CNA_S_POINTER, 0xE | core << 28)
    q.writel(b + CORE_S_POINTER, 0xE | core << 28)
    q.writel(b + PC_BASE, regcmd_iova)
    q.writel(b + PC_AMOUNTS, amount)
    q.writel(b + PC_INT_MASK, 0x300)
    q.writel(b + PC_INT_CLEAR, 0x300)
    q.writel(b + PC_TASK_CON, task_con)
    q.writel(b + PC_TASK_DMA_BASE, 0)
    q.writel(b + PC_OP_EN, 1)


def irq_done(q, core):
    """The driver's IRQ path: mask, read raw status, clear, stop."""
    b = core_base(core)
    raw = q.readl(b + PC_INT_RAW)
    q.writel(b + PC_INT_MASK, 0)
    q.writel(b + PC_OP_EN, 0)
    q.writel(b + PC_INT_CLEAR, 0x1FFFF)
    return raw


def wait_irq(q, spis, timeout=30.0):
    """Advance virtual time deadline by deadline until every SPI in spis is high."""
    end = time.monotonic() + timeout
    while not all(q.irq(s) for s in spis):
        if time.monotonic() > end:
            raise TimeoutError(f"SPIs {spis} not raised; log:\n{q.log()[-2000:]}")
        try:
            q.clock_step()
        except QTestError:
            time.sleep(0.002)   # the worker thread is still computing


def load_job(q, pt, job):
    """Map every segment of a tinyjob/mesagen job at its IOVA and fill it."""
    for iova, data in sorted(job["segments"].items()):
        pt.map_range(iova, max(len(data), 1))
        write_iova(q, pt, iova, data)


def _chunks(iova, size):
    while size:
        n = min(size, 0x1000 - (iova & 0xFFF))
        yield iova, n
        iova, size = iova + n, size - n


def write_iova(q, pt, iova, data):
    pos = 0
    for a, n in _chunks(iova, len(data)):
        q.memwrite(pt.pages[a >> 12] + (a & 0xFFF), data[pos:pos + n])
        pos += n


def read_iova(q, pt, iova, size):
    return b"".join(q.memread(pt.pages[a >> 12] + (a & 0xFFF), n) for a, n in _chunks(iova, size))
