"""Jobs of the CNA/CORE precisions other than int8 (HARDWARE-UNKNOWNS Q19), programmed the way
librocketnpu's gen_matmul_* generators program them (RU src/npu_regcmd.c): the precision words,
C2 = 128 / bits feature atoms, N-group x K-group weight tiles (GN tile-layouts.md), SIZE_E and
SURFACE_ADD of the output's kernel group; and GN's fp16 K accumulation through the EW add
(k-accumulation.md). Used by test_precisions.py and make-fuzz-seeds.py. A job is tinyjob's dict
plus "shape" (h, w, k) and "outp" (the output type's name); its regcmd comes first in memory."""
import numpy as np

import tinyjob

# name: (CNA/CORE code, element bits, weight N-group, K-group, DPU IN/PROC code) - GN
# tile-layouts.md, precision-field.md
PREC = {"int4": (6, 4, 64, 32, 6), "int8": (0, 8, 32, 32, 0), "int16": (1, 16, 16, 32, 1),
        "fp16": (2, 16, 16, 32, 2), "bf16": (3, 16, 16, 32, 3), "tf32": (7, 32, 16, 16, 5)}
# output: (DPU OUT_PRECISION, element bytes, FP32TOFP16_EN)
OUT = {"int8": (0, 1, 0), "int16": (1, 2, 0), "int32": (4, 4, 0), "fp32": (5, 4, 0),
       "fp16": (2, 2, 1)}
NATIVE = {"int4": "int16", "int8": "int32", "int16": "int32", "fp16": "fp32", "bf16": "fp32",
          "tf32": "fp32"}


# ---- element encodings ----

def codes(vals, prec):
    """Values -> raw element codes (unsigned ints of the element's width)."""
    bits = PREC[prec][1]
    v = np.asarray(vals)
    if prec == "fp16":
        return v.astype(np.float16).view(np.uint16).astype(np.int64)
    if prec == "bf16":                      # values chosen exact in bf16: the top half of fp32
        f = v.astype(np.float32).view(np.uint32).astype(np.int64)
        assert (f & 0xFFFF == 0).all()
        return f >> 16
    if prec == "tf32":                      # a raw fp32 container; the MAC rounds it
        return v.astype(np.float32).view(np.uint32).astype(np.int64)
    return v.astype(np.int64) & ((1 << bits) - 1)


def pack(c, bits):
    """Codes [..., n] -> little-endian bytes [..., n*bits/8] (int4: even element low nibble)."""
    c = np.asarray(c, dtype=np.int64)
    if bits == 4:
        assert c.shape[-1] % 2 == 0
        return (c[..., 0::2] | c[..., 1::2] << 4).astype(np.uint8)
    b = bits // 8
    return np.stack([(c >> (8 * i)) & 0xFF for i in range(b)], axis=-1).reshape(
        c.shape[:-1] + (-1,)).astype(np.uint8)


def feature(a, prec):
    """[h, w, c] values -> NC1HWC2 bytes: 16-byte atoms of C2 = 128/bits channels."""
    bits = PREC[prec][1]
    h, w, c = a.shape
    c2 = 128 // bits
    ns = -(-c // c2)
    cd = np.zeros((h, w, ns * c2), dtype=np.int64)
    cd[:, :, :c] = codes(a, prec)
    atoms = pack(cd, bits).reshape(h, w, ns, 16)
    return atoms.transpose(2, 0, 1, 3).tobytes()


def weights(wt, prec, dw=False):
    """wt [k, kh, kw, c] (depthwise [kh, kw, c]) -> the weight tiles (GN tile-layouts.md):
    element (o/NG)*NG*kh*kw*C + (c/KG)*kh*kw*nk*KG + (ky*kw+kx)*nk*gw + (o%NG)*gw + c%KG."""
    _, bits, ng, kg, _ = PREC[prec]
    if dw:
        kh, kw, c = wt.shape
        g = 32
        out = np.zeros(kh * kw * c, dtype=np.int64)
        cd = codes(wt, prec)
        for ch in range(c):
            gw = min(g, c - g * (ch // g))
            for t in range(kh * kw):
                out[(ch // g) * kh * kw * g + t * gw + ch % g] = cd[t // kw, t % kw, ch]
    else:
        k, kh, kw, c = wt.shape
        out = np.zeros(k * kh * kw * c, dtype=np.int64)
        cd = codes(wt, prec)
        for o in range(k):
            nk = min(ng, k - ng * (o // ng))
            for ch in range(c):
                gw = min(kg, c - kg * (ch // kg))
                for t in range(kh * kw):
                    out[(o // ng) * ng * kh * kw * c + (ch // kg) * kh * kw * nk * kg +
                        t * nk * gw + (o % ng) * gw + ch % kg] = cd[o, t // kw, t % kw, ch]
    if bits == 4 and len(out) % 2:
        out = np.append(out, 0)
    return pack(out, bits).tobytes()


def unpack_out(raw, out, h, w, k):
    """The output cube (C2 = 16 / element bytes) -> [h, w, k] values."""
    code, eb, _ = OUT[out]
    dt = {"int8": "<i1", "int16": "<i2", "int32": "<i4", "fp32": "<f4", "fp16": "<f2"}[out]
    c2 = 16 // eb
    buf = np.frombuffer(raw, dtype=dt).reshape(-1, h, w, c2)
    return np.stack([buf[o // c2, :, :, o % c2] for o in range(k)], axis=2)


def cbuf_units(w, c, bits):
    """DATA_ENTRIES a row needs (Q15/Q19: the CBUF geometry on ceil(c*bits/8) bytes)."""
    return tinyjob.cbuf_entries(w, -(-c * bits // 8))


# ---- register programs ----

def conv_regs(prec, out, w, h, c, k, src, wt_addr, dst, kh=1, kw=1, stride=1, pad=(0, 0),
              pad_value=0, dw=False, row_major=False, size_e=None, qd_en=None):
    """One convolution task's registers as gen_matmul_task writes them (RU npu_regcmd.c)."""
    code, bits, ng, kg, dpu = PREC[prec]
    ocode, eb, half = OUT[out]
    wo, ho = (w + 2 * pad[1] - kw) // stride + 1, (h + 2 * pad[0] - kh) // stride + 1
    kk = 1 if dw else k
    group = 32 if dw else ng
    per_group = group * eb // 16
    e = per_group - 1 if size_e is None else size_e
    surf = wo * ho * 16
    entries = cbuf_units(w, c, bits)
    banks = min(11, max(1, -(-entries * h // 512)))
    wbytes = -(-kh * kw * c * bits // 8)
    qd = (0 if bits <= 8 else 1) if qd_en is None else qd_en
    con1 = (3 if dw else 0) | code << 4 | code << 7 | (1 << 29 if row_major else 0)
    line, surf_stride = (c * bits // 128, 0) if row_major else (4 * w, (w * (h - 4)) & 0x0FFFFFFF)
    return [
        ("DPU_S_POINTER", 0xE), ("DPU_RDMA_S_POINTER", 0xE),
        ("CNA_CONV_CON1", con1), ("CNA_CONV_CON2", (h + 1) << 4),
        ("CNA_CONV_CON3", stride | stride << 3),
        ("CNA_DATA_SIZE0", w << 16 | h), ("CNA_DATA_SIZE1", (c - 1) << 16 | c),
        ("CNA_DATA_SIZE2", wo), ("CNA_DATA_SIZE3", wo * ho),
        ("CNA_WEIGHT_SIZE0", wbytes * kk), ("CNA_WEIGHT_SIZE1", wbytes),
        ("CNA_WEIGHT_SIZE2", kw << 24 | kh << 16 | kk),
        ("CNA_CBUF_CON0", banks | (12 - banks) << 4), ("CNA_CBUF_CON1", entries),
        ("CNA_CVT_CON0", 0xB), ("CNA_CVT_CON1", 1 << 16), ("CNA_CVT_CON2", 1 << 16),
        ("CNA_CVT_CON3", 1 << 16), ("CNA_CVT_CON4", 1 << 16),
        ("CNA_PAD_CON0", pad[0] | pad[1] << 4), ("CNA_FEATURE_DATA_ADDR", src),
        ("CNA_DMA_CON0", 15 << 16 | 15), ("CNA_DMA_CON1", line), ("CNA_DMA_CON2", surf_stride),
        ("CNA_FC_DATA_SIZE0", w << 16 | h), ("CNA_FC_DATA_SIZE1", c),
        ("CNA_DCOMP_ADDR0", wt_addr), ("CNA_PAD_CON1", pad_value),
        ("CORE_MISC_CFG", code << 8 | (2 if dw else 0) | qd),
        ("CORE_DATAOUT_SIZE_0", (ho - 1) << 16 | (wo - 1)), ("CORE_DATAOUT_SIZE_1", k - 1),
        ("DPU_FEATURE_MODE_CFG", 15 << 5 | (3 << 3 if dw else 0) | 2 << 1),
        ("DPU_DATA_FORMAT", ocode << 29 | dpu << 26 | dpu),
        ("DPU_DST_BASE_ADDR", dst), ("DPU_DST_SURF_STRIDE", surf),
        ("DPU_DATA_CUBE_WIDTH", wo - 1), ("DPU_DATA_CUBE_HEIGHT", ho - 1),
        ("DPU_DATA_CUBE_NOTCH_ADDR", 0), ("DPU_DATA_CUBE_CHANNEL", (k - 1) << 16 | (k - 1)),
        ("DPU_BS_CFG", 0x53), ("DPU_BS_OW_CFG", e << 8 | e << 5 | e << 2 | 2),
        ("DPU_BN_CFG", 0x53), ("DPU_EW_CFG", 0x383), ("DPU_EW_CVT_SCALE_VALUE", 1),
        ("DPU_OUT_CVT_OFFSET", 0), ("DPU_OUT_CVT_SCALE", half << 16 | 1), ("DPU_OUT_CVT_SHIFT", 0),
        ("DPU_SURFACE_ADD", per_group * surf),
        ("DPU_RDMA_DATA_CUBE_WIDTH", wo - 1), ("DPU_RDMA_DATA_CUBE_HEIGHT", ho - 1),
        ("DPU_RDMA_DATA_CUBE_CHANNEL", k - 1), ("DPU_RDMA_SRC_BASE_ADDR", 0),
        ("DPU_RDMA_BRDMA_CFG", 0), ("DPU_RDMA_ERDMA_CFG", 1),
        ("DPU_RDMA_FEATURE_MODE_CFG", 15 << 11 | 1 << 4 | half << 3),
    ]


def chain(lay, tasks, iovas=None):
    """Regcmd buffers for a list of register lists, each task linking the next (one kick), at
    iovas (default: taken from lay now)."""
    iovas = iovas or [lay.take(8 * (len(r) + 8)) for r in tasks]
    segs, amount = {}, None
    for i in reversed(range(len(tasks))):
        ents = [tinyjob.entry(n, v) for n, v in tasks[i]]
        if i + 1 < len(tasks):
            ents += [tinyjob.entry("PC_BASE_ADDRESS", iovas[i + 1]),
                     tinyjob.entry("PC_REGISTER_AMOUNTS", amount)]
        ents += [0x0041 << 48, 0x0081 << 48 | 0x1D << 16 | 0x0008]
        if len(ents) % 2:
            ents.append(0)
        segs[iovas[i]] = b"".join(x.to_bytes(8, "little") for x in ents)
        amount = len(ents) // 2 - 1
    return segs, (iovas[0], amount, 0x7000 | len(tasks))


def matmul_job(prec, a, b, out=None, base=0x100000, **kw):
    """C[m, n] = A[m, k]·B[n, k]^T as a 1x1 conv of an [h, w] = a.shape[:2] plane."""
    out = out or NATIVE[prec]
    h, w, c = a.shape
    k = b.shape[0]
    eb = OUT[out][1]
    lay = tinyjob.Layout(base)
    rc = lay.take(4096)
    x = feature(a, prec)
    wb = weights(b.reshape(k, 1, 1, c), prec)
    xi, wi = lay.take(len(x)), lay.take(len(wb))
    size = -(-k // (16 // eb)) * w * h * 16
    oi = lay.take(size)
    regs = conv_regs(prec, out, w, h, c, k, xi, wi, oi, **kw)
    segs, kick = chain(lay, [regs], [rc])
    segs.update({xi: x, wi: wb, oi: bytes(size)})
    return {"segments": segs, "kicks": [kick], "out": (oi, size), "shape": (h, w, k),
            "outp": out}



def kacc_job(a, b, nk, base=0x100000):
    """C = A·B^T with K split into nk slices, one task each, chained in one kick: task ki writes
    buffer ki % 2; ki > 0 adds the previous partial (buffer (ki-1) % 2) through the EW stage:
    EW_CFG 0x108202C0, ERDMA_CFG 0x40000008, FEATURE_MODE_CFG 0x17D40, SRC_BASE = P,
    EW_BASE = P + one surface, EW_SURF_STRIDE = SURF_NOTCH = EW_SURF_NOTCH = max(M, 12) atoms."""
    m, _, k = a.shape
    n = b.shape[0]
    kt = k // nk
    lay = tinyjob.Layout(base)
    rcs = [lay.take(4096) for _ in range(nk)]
    segs, tasks = {}, []
    surf = m * 16
    size = -(-n // 8) * surf
    bufs = [lay.take(size), lay.take(size)]
    for ki in range(nk):
        x = feature(a[:, :, ki * kt:(ki + 1) * kt], "fp16")
        wb = weights(b[:, ki * kt:(ki + 1) * kt].reshape(n, 1, 1, kt), "fp16")
        xi, wi = lay.take(len(x)), lay.take(len(wb))
        segs.update({xi: x, wi: wb})
        regs = conv_regs("fp16", "fp16", 1, m, kt, n, xi, wi, bufs[ki % 2])
        if ki:
            p = bufs[(ki - 1) % 2]
            st = max(m, 12) * 16
            regs += [("DPU_EW_CFG", 0x108202C0), ("DPU_RDMA_ERDMA_CFG", 0x40000008),
                     ("DPU_RDMA_FEATURE_MODE_CFG", 0x17D40), ("DPU_RDMA_SRC_BASE_ADDR", p),
                     ("DPU_RDMA_EW_BASE_ADDR", p + surf), ("DPU_RDMA_EW_SURF_STRIDE", st),
                     ("DPU_RDMA_SURF_NOTCH", st), ("DPU_RDMA_EW_SURF_NOTCH", st)]
        tasks.append(regs)
    rsegs, kick = chain(lay, tasks, rcs)
    segs.update(rsegs)
    segs.update({bufs[0]: bytes(size), bufs[1]: bytes(size)})
    return {"segments": segs, "kicks": [kick], "out": (bufs[(nk - 1) % 2], size),
            "shape": (m, 1, n), "outp": "fp16"}
