"""Small hand-built NPU jobs for device-level tests (not Mesa's programming: see rknpu/mesagen).

A job is a dict: `segments` {iova: bytes}, `kicks` [(regcmd_iova, amount, task_con)], `out`
(iova, size) and `expect` (the output bytes, computed here in numpy from the hardware rules of
qemu-hw/core/HARDWARE-UNKNOWNS.md for this plain configuration).
"""
import os
import re

import numpy as np

DEF = os.path.join(os.path.dirname(__file__), "..", "qemu-hw", "core", "rknpu-regs.def")
TARGET = {0x0: 0x0101, 0x1: 0x0201, 0x3: 0x0801, 0x4: 0x1001, 0x5: 0x2001, 0x6: 0x4001,
          0x7: 0x8001}


def _load_regs():
    regs = {}
    for m in re.finditer(r"RN_REG\((\w+), (\w+), (0x[0-9A-F]+),", open(DEF).read()):
        regs[f"{m.group(1)}_{m.group(2)}"] = int(m.group(3), 16)
    return regs


REGS = _load_regs()


def entry(reg, value):
    off = REGS[reg]
    return TARGET[off >> 12] << 48 | (value & 0xFFFFFFFF) << 16 | off


def regcmd(writes, op_en=0x1D):
    entries = [entry(r, v) for r, v in writes]
    entries += [0x0041 << 48, 0x0081 << 48 | op_en << 16 | 0x0008]
    if len(entries) % 2:
        entries.append(0)
    return b"".join(e.to_bytes(8, "little") for e in entries), len(entries) // 2 - 1


def rne_shift(x, sh):
    q = x >> sh
    r = x - (q << sh)
    half = 1 << (sh - 1)
    return q + ((r > half) | ((r == half) & (q & 1)))


class Layout:
    """Page-aligned segments laid out bottom-up from `base`, as rocket assigns BO IOVAs."""

    def __init__(self, base):
        self.next = base

    def take(self, size):
        iova = self.next
        self.next += (max(size, 1) + 0xFFF) & ~0xFFF
        return iova


def cbuf_entries(w, c):
    """64-byte CBUF units one row of w pixels x c int8 channels takes (HARDWARE-UNKNOWNS Q15)."""
    atoms = (c + 15) // 16
    return atoms // 4 * w + (w if atoms % 4 == 3 else -(-w * (atoms % 4) // 4))


def _conv_task(w, h, c, k, in_iova, wt_iova, bias_iova, out_iova, scale, shift, ow_op):
    """Registers of a 1x1 stride-1 conv of an int8 NC1HWC2 w x h x c tensor to k channels."""
    surf = w * h * 16
    entries = cbuf_entries(w, c)
    banks = min(11, -(-entries * h // 512))
    return [
        ("DPU_S_POINTER", 0xE), ("CNA_CONV_CON3", 1 | 1 << 3),
        ("CNA_DATA_SIZE0", w << 16 | h), ("CNA_DATA_SIZE1", (c - 1) << 16 | c),
        ("CNA_WEIGHT_SIZE0", k * c), ("CNA_WEIGHT_SIZE1", c),
        ("CNA_WEIGHT_SIZE2", 1 << 24 | 1 << 16 | k), ("CNA_CVT_CON0", 0xB),
        ("CNA_FEATURE_DATA_ADDR", in_iova), ("CNA_DMA_CON1", 4 * w),
        ("CNA_DMA_CON2", (w * (h - 4)) & 0x0FFFFFFF), ("CNA_DCOMP_ADDR0", wt_iova),
        # the CBUF as Mesa grants it: enough data banks, 64-byte units per row (Q15)
        ("CNA_CBUF_CON0", banks | (12 - banks) << 4), ("CNA_CBUF_CON1", entries),
        ("CORE_MISC_CFG", 1), ("CORE_DATAOUT_SIZE_0", (h - 1) << 16 | (w - 1)),
        ("DPU_FEATURE_MODE_CFG", 0x1E4), ("DPU_DST_BASE_ADDR", out_iova),
        ("DPU_DST_SURF_STRIDE", surf), ("DPU_DATA_CUBE_WIDTH", w - 1),
        ("DPU_DATA_CUBE_HEIGHT", h - 1), ("DPU_DATA_CUBE_CHANNEL", (k - 1) << 16 | (k - 1)),
        ("DPU_BS_CFG", 0x20150), ("DPU_BS_OW_CFG", 0x124), ("DPU_BS_OW_OP", ow_op & 0xFFFF),
        ("DPU_BN_CFG", 0x53), ("DPU_EW_CFG", 0x383), ("DPU_OUT_CVT_SCALE", scale),
        ("DPU_OUT_CVT_SHIFT", shift), ("DPU_OUT_CVT_OFFSET", 3), ("DPU_SURFACE_ADD", 2 * surf),
        ("DPU_RDMA_BRDMA_CFG", 2), ("DPU_RDMA_BS_BASE_ADDR", bias_iova),
        ("DPU_RDMA_FEATURE_MODE_CFG", 0x7810),
    ]


def _weights(wt, k, c):
    """Hardware weight layout for kh = kw = 1 (HARDWARE-UNKNOWNS Q5)."""
    out = bytearray(k * c)
    for o in range(k):
        nk = min(32, k - 32 * (o // 32))
        for ch in range(c):
            gw = min(32, c - 32 * (ch // 32))
            out[(o // 32) * 32 * c + (ch // 32) * nk * 32 + (o % 32) * gw + ch % 32] = \
                int(wt[o, ch]) & 0xFF
    return bytes(out)


def _nc1hwc2(t):
    """(h, w, c) int array -> NC1HWC2 bytes."""
    h, w, c = t.shape
    out = np.zeros(((c + 15) // 16, h, w, 16), dtype=np.int64)
    for ch in range(c):
        out[ch // 16, :, :, ch % 16] = t[:, :, ch]
    return out.astype(np.int8).tobytes()


def _expect(a, wt, bias, scale, shift, ow_op):
    """Output (h, w, k) of the conv, straight from the arithmetic rules."""
    acc = np.einsum("hwc,kc->hwk", a, wt) + bias[None, None, :]
    acc += ow_op * a.sum(axis=2)[:, :, None]
    sc = scale - 0x10000 if scale & 0x8000 else scale
    return np.clip(rne_shift(np.clip(acc, -2**31, 2**31 - 1) * sc, shift) + 3, -128, 127)


def conv1x1(w=8, h=4, c=16, k=32, seed=1, base=0x100000, scale=0x5A3C, shift=21, ow_op=-3,
            tasks=1):
    """One 1x1 conv task, or a chain of `tasks` of them (each reads the previous output)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(h, w, c), dtype=np.int64)
    lay = Layout(base)
    regcmd_iova = lay.take(1088 * tasks)
    in_iova = lay.take(w * h * 16 * ((c + 15) // 16))
    segments, progs, kicks, x, cin = {}, b"", [], a, c
    segments[in_iova] = _nc1hwc2(a)
    src = in_iova
    for t in range(tasks):
        wt = rng.integers(-128, 128, size=(k, cin), dtype=np.int64)
        bias = rng.integers(-5000, 5000, size=k, dtype=np.int64)
        wt_iova, bias_iova = lay.take(k * cin), lay.take(4 * k)
        out_iova = lay.take(w * h * 16 * ((k + 15) // 16))
        segments[wt_iova] = _weights(wt, k, cin)
        segments[bias_iova] = bias.astype("<i4").tobytes()
        prog, amount = regcmd(_conv_task(w, h, cin, k, src, wt_iova, bias_iova, out_iova, scale,
                                         shift, ow_op))
        kicks.append((regcmd_iova + 1088 * t, amount, 0x7001))
        progs += prog + bytes(1088 - len(prog))
        x = _expect(x, wt, bias, scale, shift, ow_op)
        segments[out_iova] = bytes(w * h * 16 * ((k + 15) // 16))
        src, cin = out_iova, k
    segments[regcmd_iova] = progs
    job = {"segments": segments, "kicks": kicks, "out": (src, len(segments[src])),
           "expect": _nc1hwc2(x)}
    if max(cbuf_entries(w, c), cbuf_entries(w, k)) * h > 11 * 512:
        # one task cannot hold this feature in the CBUF (Mesa would split it): a board garbles
        # its last rows (quirk cbuf-data-overflow), so expect what the reference model gives
        from rknpu import hwref
        mem, _ = hwref.run_job(segments, kicks)
        job["expect"], job["cbuf_overflow"] = mem.read(*job["out"]), True
    return job


def write_job_dir(job, path):
    """Write a job as a JOB-FORMAT.md folder, for rknpu-run."""
    os.makedirs(path, exist_ok=True)
    lines = ["rknpu-job 1"]
    for n, (iova, data) in enumerate(sorted(job["segments"].items())):
        name = f"seg{n}.bin"
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
        size = max(len(data), 1)
        lines.append(f"mem 0x{iova:08x} 0x{size:x} {name}")
    for regcmd_iova, amount, task_con in job["kicks"]:
        lines.append(f"kick 0x{regcmd_iova:08x} {amount} 0x{task_con:x}")
    oi, osz = job["out"]
    lines.append(f"dump 0x{oi:08x} 0x{osz:x} out.bin")
    with open(os.path.join(path, "job.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
