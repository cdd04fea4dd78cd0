"""Standalone PPU pool jobs (op_en 0x60 = PPU | PPU_RDMA), programmed register by register as the
hardware notes' pool programs do (GN `gen_pool_fp16`, AB `pooling.py`; HARDWARE-UNKNOWNS.md Q16),
in the job format of tinyjob.py / qemu-hw/tools/JOB-FORMAT.md.

`pool_job(x, ...)` takes an (h, w, c) array whose dtype names the precision (int8, int16, float16;
or int32 / float32 for the pairs that write zeros) and returns a job dict: `segments`, `kicks`,
`out` (iova, size) and `geom` (what unpack() needs). Nothing here computes the expected result:
the tests take it from hwref (the reference written from Q16) or from hardware observations.
"""
import numpy as np

from .regs import MARKER, entry, op_en

METHODS = {"avg": 0, "max": 1, "min": 2}
# numpy dtype -> (PROC_PRECISION, PPU_RDMA IN_PRECISION) of the measured pairs (Q16)
PRECISIONS = {np.dtype(np.int8): (0, 1), np.dtype(np.int16): (1, 2),
              np.dtype(np.float16): (2, 2), np.dtype(np.int32): (4, 3),
              np.dtype(np.float32): (5, 3)}
OUT_FILL = 0xA5           # the output segment's bytes before the job: a write shows


def recip_q16(k, rounding="floor"):
    """Integer Q16 reciprocal of a window extent: GN 0x10000 // k, or AB round(65536 / k)."""
    return 65536 // k if rounding == "floor" else int(65536 / k + 0.5)


def recip_fp16(k):
    """GN's fp16 reciprocal: the binary16 bits of 65536 / k (k = 1 gives 0x7C00)."""
    with np.errstate(over="ignore"):
        return int(np.array(65536.0 / k, dtype=np.float16).view(np.uint16))


def out_size(n, k, s, p0, p1):
    return (n + p0 + p1 - k) // s + 1


def pack(x, line=None, surf=None, tail=0):
    """(h, w, c) -> NC1HWC2 bytes with the given byte strides; lanes past c hold `tail`."""
    h, w, c = x.shape
    e = x.dtype.itemsize
    c2 = 16 // e
    ns = -(-c // c2)
    line = line or w * 16
    surf = surf or h * line
    buf = bytearray((ns - 1) * surf + (h - 1) * line + w * 16)
    full = np.full((h, w, ns * c2), tail, dtype=x.dtype)
    full[:, :, :c] = x
    for s in range(ns):
        for y in range(h):
            a = s * surf + y * line
            buf[a:a + w * 16] = full[y, :, s * c2:(s + 1) * c2].tobytes()
    return bytes(buf)


def unpack(data, geom):
    """Output bytes -> (oh, ow, ns * c2) array of the job's dtype (tail lanes included)."""
    oh, ow, c, dt, ds = geom["oh"], geom["ow"], geom["c"], geom["dtype"], geom["dst_surf"]
    c2 = 16 // dt.itemsize
    ns = -(-c // c2)
    out = np.zeros((oh, ow, ns * c2), dtype=dt)
    for s in range(ns):
        raw = data[s * ds:s * ds + oh * ow * 16]
        out[:, :, s * c2:(s + 1) * c2] = np.frombuffer(raw, dtype=dt).reshape(oh, ow, c2)
    return out


def pool_regs(geom, method, recip, pad_value, src, dst, in_precision=None, mode_extra=0,
              s_pointer=0xE):
    """The register writes of one pool task (AB / GN order)."""
    g = geom
    prec, width = PRECISIONS[g["dtype"]]
    width = width if in_precision is None else in_precision
    (kh, kw), (sy, sx), (pl, pt, pr, pb) = g["kernel"], g["stride"], g["pads"]
    out_surf = g["oh"] * g["ow"] * 16
    return [
        ("PPU_S_POINTER", s_pointer), ("PPU_RDMA_S_POINTER", s_pointer),
        ("PPU_DATA_CUBE_IN_WIDTH", g["iw"] - 1), ("PPU_DATA_CUBE_IN_HEIGHT", g["ih"] - 1),
        ("PPU_DATA_CUBE_IN_CHANNEL", g["c"] - 1), ("PPU_DATA_CUBE_OUT_WIDTH", g["ow"] - 1),
        ("PPU_DATA_CUBE_OUT_HEIGHT", g["oh"] - 1), ("PPU_DATA_CUBE_OUT_CHANNEL", g["c"] - 1),
        ("PPU_OPERATION_MODE_CFG", 1 << 4 | METHODS[method] | mode_extra),
        ("PPU_POOLING_KERNEL_CFG", (sy - 1) << 20 | (sx - 1) << 16 | (kh - 1) << 8 | (kw - 1)),
        ("PPU_RECIP_KERNEL_WIDTH", recip[0]), ("PPU_RECIP_KERNEL_HEIGHT", recip[1]),
        ("PPU_POOLING_PADDING_CFG", pb << 12 | pr << 8 | pt << 4 | pl),
        ("PPU_PADDING_VALUE_1_CFG", pad_value), ("PPU_PADDING_VALUE_2_CFG", 0),
        ("PPU_DST_BASE_ADDR", dst), ("PPU_DST_SURF_STRIDE", g["dst_surf"]),
        ("PPU_DATA_FORMAT", out_surf | prec), ("PPU_MISC_CTRL", 3),
        ("PPU_RDMA_CUBE_IN_WIDTH", g["iw"] - 1), ("PPU_RDMA_CUBE_IN_HEIGHT", g["ih"] - 1),
        ("PPU_RDMA_CUBE_IN_CHANNEL", g["c"] - 1), ("PPU_RDMA_SRC_BASE_ADDR", src),
        ("PPU_RDMA_SRC_LINE_STRIDE", g["line"]), ("PPU_RDMA_SRC_SURF_STRIDE", g["surf"]),
        ("PPU_RDMA_DATA_FORMAT", width),
    ]


def regcmd(writes, blocks=0x60):
    entries = [entry(r, v) for r, v in writes] + [MARKER, op_en(blocks)]
    if len(entries) % 2:
        entries.append(0)
    return b"".join(e.to_bytes(8, "little") for e in entries), len(entries) // 2 - 1


def default_pad(method, dtype):
    """The pad value a program would choose: 0 for average, the identity for max / min."""
    if method == "avg":
        return 0
    if dtype == np.float16:
        return 0xFC00 if method == "max" else 0x7C00
    info = np.iinfo(dtype)
    v = info.min if method == "max" else info.max
    return v & 0x7FFFF        # sign-extended in 19 bits, as GN writes -128 (0x0007FF80)


def pool_job(x, method, kernel, stride=None, pads=(0, 0, 0, 0), pad_value=None, recip=None,
             out_hw=None, line=None, surf=None, dst_surf=None, tail=0, base=0x100000,
             in_precision=None, mode_extra=0, blocks=0x60, extra_regs=(), tasks=1):
    """A job of `tasks` identical pool tasks (one kick each) over x (h, w, c).

    kernel, stride: (kh, kw), (sy, sx); pads: (left, top, right, bottom); recip: the two register
    values (default: Q16 floor for integers, fp16(65536 / k) for fp16, 0 for max / min)."""
    x = np.asarray(x)
    dt = x.dtype
    h, w, c = x.shape
    kh, kw = kernel
    sy, sx = stride or kernel
    pl, pt, pr, pb = pads
    oh, ow = out_hw or (out_size(h, kh, sy, pt, pb), out_size(w, kw, sx, pl, pr))
    e = dt.itemsize
    ns = -(-c // (16 // e))
    line = line or w * 16
    surf = surf or h * line
    dst_surf = dst_surf or oh * ow * 16
    if recip is None:
        if method != "avg":
            recip = (0, 0)
        elif dt == np.float16:
            recip = (recip_fp16(kw), recip_fp16(kh))
        else:
            recip = (recip_q16(kw), recip_q16(kh))
    if pad_value is None:
        pad_value = default_pad(method, dt) if dt != np.int32 and dt != np.float32 else 0
    geom = {"ih": h, "iw": w, "c": c, "oh": oh, "ow": ow, "kernel": (kh, kw), "stride": (sy, sx),
            "pads": (pl, pt, pr, pb), "line": line, "surf": surf, "dst_surf": dst_surf,
            "dtype": dt}
    inp = pack(x, line, surf, tail)
    out_bytes = (ns - 1) * dst_surf + oh * ow * 16
    regcmd_iova = base
    in_iova = base + 0x10000
    out_iova = in_iova + ((len(inp) + 0xFFFF) & ~0xFFFF)
    prog, amount = regcmd(pool_regs(geom, method, recip, pad_value, in_iova, out_iova,
                                    in_precision, mode_extra) + list(extra_regs), blocks)
    progs = prog * tasks
    return {"segments": {regcmd_iova: progs, in_iova: inp,
                         out_iova: bytes([OUT_FILL]) * out_bytes},
            "kicks": [(regcmd_iova + t * len(prog), amount, 0x7001) for t in range(tasks)],
            "out": (out_iova, out_bytes), "geom": geom}
