"""The CNA/CORE precisions other than int8 (HARDWARE-UNKNOWNS Q19): int4, int16, fp16, bf16 and
tf32 matmuls (1x1 convolutions on a W = 1 column, on long rows, row-major) and convolutions,
programmed the way librocketnpu's gen_matmul_* generators program them (precision words, C2 = 128
/ bits feature atoms, N-group x K-group weight tiles, SIZE_E and SURFACE_ADD of the output's
kernel group), run on the C core (rknpu-run) and on the independent reference (rknpu/hwref.py,
from Q19), and checked against numpy: integer data and integer-valued float data bit-exactly (no
accumulation order can change those), random float data within the rounding the hardware could
do, and bit-exactly between core and reference (the same Q19 rule: exact sum, one rounding). The
fp16 K accumulation of GN's recipe (k-accumulation.md: the partial through the EW add, two ERDMA
streams, ping-pong buffers) chained in one kick rounds the running sum to fp16 at every step."""
import os
import subprocess

import numpy as np
import pytest

import tinyjob
from rknpu import hwref

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "qemu-hw", "tools", "rknpu-run"))

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


def chain(lay, tasks):
    """Regcmd buffers for a list of register lists, each task linking the next (one kick)."""
    iovas = [lay.take(8 * (len(r) + 8)) for r in tasks]
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


def matmul_job(prec, a, b, out=None, **kw):
    """C[m, n] = A[m, k]·B[n, k]^T as a 1x1 conv of an [h, w] = a.shape[:2] plane."""
    out = out or NATIVE[prec]
    h, w, c = a.shape
    k = b.shape[0]
    eb = OUT[out][1]
    lay = tinyjob.Layout(0x100000)
    x = feature(a, prec)
    wb = weights(b.reshape(k, 1, 1, c), prec)
    xi, wi = lay.take(len(x)), lay.take(len(wb))
    size = -(-k // (16 // eb)) * w * h * 16
    oi = lay.take(size)
    regs = conv_regs(prec, out, w, h, c, k, xi, wi, oi, **kw)
    segs, kick = chain(lay, [regs])
    segs.update({xi: x, wi: wb, oi: bytes(size)})
    return {"segments": segs, "kicks": [kick], "out": (oi, size), "shape": (h, w, k),
            "outp": out}


def run_core(j, tmp_path, quirks=None, tag="job"):
    d = str(tmp_path / tag)
    tinyjob.write_job_dir(j, d)
    res = subprocess.run([RKNPU_RUN, "-q"] + (["--quirks", quirks] if quirks else []) + [d],
                         capture_output=True, text=True)
    out = b""
    if os.path.exists(os.path.join(d, "out.bin")):
        with open(os.path.join(d, "out.bin"), "rb") as f:
            out = f.read()
    return out, res.returncode, res.stderr


def run_both(j, tmp_path, quirks=None):
    """Core and reference agree byte for byte; returns the output as values."""
    got, rc, err = run_core(j, tmp_path, quirks)
    assert rc == 0, err
    mem, status = hwref.run_job(j["segments"], j["kicks"], quirks=quirks)
    assert status in ([0x100], [0x200])       # DPU_0 / DPU_1: the executer of the last task
    assert mem.read(*j["out"]) == got
    return unpack_out(got, j["outp"], *j["shape"])


def rand_ints(rng, lo, hi, shape):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int64)


# ---- integer precisions ----

@pytest.mark.parametrize("m,k,n", [(4, 32, 64), (12, 96, 128), (20, 64, 64)])
def test_int4_matmul(m, k, n, tmp_path):
    """int4 x int4 -> int16 (GN: bit-exact, K%32, N%64), nibble-packed, N-group 64."""
    rng = np.random.default_rng(m * 1000 + k)
    a, b = rand_ints(rng, -8, 7, (m, 1, k)), rand_ints(rng, -8, 7, (n, k))
    got = run_both(matmul_job("int4", a, b), tmp_path)
    assert (got[:, 0, :] == a[:, 0, :] @ b.T).all()


def test_int4_saturates_at_int16(tmp_path):
    """GN tile-layouts.md: int4's int16 output saturates (pins at the rails); K = 1024 of +-7
    products reaches 50176."""
    a = np.full((4, 1, 1024), 7, dtype=np.int64)
    a[2:] = -7
    b = np.full((64, 1024), 7, dtype=np.int64)
    b[1::2, :512] = -7
    got = run_both(matmul_job("int4", a, b), tmp_path)
    exact = a[:, 0, :] @ b.T
    assert (np.abs(exact) > 32767).any()
    assert (got[:, 0, :] == np.clip(exact, -32768, 32767)).all()
    assert (got == 32767).any() and (got == -32768).any()


def test_int4_long_rows(tmp_path):
    """A 1x1 conv over a long row (W = 40 pixels, H = 4), odd channel count 48 (K%32 != 0)."""
    rng = np.random.default_rng(7)
    a, b = rand_ints(rng, -8, 7, (4, 40, 48)), rand_ints(rng, -8, 7, (64, 48))
    got = run_both(matmul_job("int4", a, b), tmp_path)
    assert (got == np.einsum("hwc,kc->hwk", a, b)).all()


@pytest.mark.parametrize("m,k,n", [(4, 32, 16), (16, 64, 48), (8, 96, 32)])
def test_int16_matmul(m, k, n, tmp_path):
    """int16 x int16 -> int32, QD_EN 1, SIZE_E 3 / x4 (GN output-transpose-int16.md)."""
    rng = np.random.default_rng(k + n)
    a, b = rand_ints(rng, -3000, 3000, (m, 1, k)), rand_ints(rng, -3000, 3000, (n, k))
    got = run_both(matmul_job("int16", a, b), tmp_path)
    assert (got[:, 0, :] == a[:, 0, :] @ b.T).all()


def test_int16_wide_sum_saturates_once(tmp_path):
    """int16 sums are exact past int32 on the way (GN's "big" fill reaches 2^35.5) and the result
    saturates to int32 at the end: +big, +big, -big, -big comes back exact; 4 x big pins."""
    big = 32767 * 32767
    a = np.full((4, 1, 32), 32767, dtype=np.int64)
    b = np.zeros((16, 32), dtype=np.int64)
    b[0, :4] = [32767, 32767, -32767, -32767]       # 2 big up, 2 down: exact 0
    b[1, :4] = 32767                                # 4 big: past int32
    b[2, :3] = [32767, 32767, -32767]               # big
    b[3] = 32767                                    # 32 big
    b[4, :3] = -32768                               # 3 big negative: pins
    got = run_both(matmul_job("int16", a, b), tmp_path)[0, 0]
    assert list(got[:5]) == [0, 2**31 - 1, big, 2**31 - 1, -2**31]


def test_int16_needs_qd_en(tmp_path):
    """RU/GN: int16 with QD_EN 0 computes one kernel group only: not modelled, refused."""
    a, b = np.ones((4, 1, 32), dtype=np.int64), np.ones((16, 32), dtype=np.int64)
    _, rc, err = run_core(matmul_job("int16", a, b, qd_en=0), tmp_path)
    assert rc != 0 and "QD_EN 0" in err


def test_int16_size_e_7_hangs(tmp_path):
    """GN: int16 with int8's SIZE_E 7 writes part of the output and never completes (quirk
    size-e); SIZE_E 3 is the int16 -> int32 writer."""
    rng = np.random.default_rng(3)
    a, b = rand_ints(rng, -9, 9, (8, 1, 32)), rand_ints(rng, -9, 9, (32, 32))
    j = matmul_job("int16", a, b, size_e=7)
    _, rc, err = run_core(j, tmp_path)
    assert rc == 1 and "quirk size-e" in err and "hang" in err
    mem, status = hwref.run_job(j["segments"], j["kicks"])
    assert status == [0]


# ---- float precisions: integer-valued data, where every rounding model agrees ----

@pytest.mark.parametrize("prec", ["fp16", "bf16", "tf32"])
@pytest.mark.parametrize("m,k,n", [(4, 32, 16), (16, 128, 48), (12, 64, 32)])
def test_float_matmul_integer_data_exact(prec, m, k, n, tmp_path):
    """Integer-valued operands with partial sums below 2^24: exact in fp32 whatever the
    accumulation order (GN: fp16 bit-exact on integer data, K up to 10240)."""
    rng = np.random.default_rng(k * 7 + n)
    a, b = rand_ints(rng, -15, 15, (m, 1, k)), rand_ints(rng, -15, 15, (n, k))
    got = run_both(matmul_job(prec, a.astype(np.float64), b.astype(np.float64)), tmp_path)
    assert got.dtype == np.float32
    assert (got[:, 0, :] == (a[:, 0, :] @ b.T).astype(np.float32)).all()


def test_fp16_to_fp16_output(tmp_path):
    """fp16 -> fp16 (FP32TOFP16_EN, SIZE_E 1, x2, C2 = 8): the fp32 sum narrowed by RNE."""
    rng = np.random.default_rng(5)
    a, b = rand_ints(rng, -40, 40, (8, 1, 64)), rand_ints(rng, -40, 40, (32, 64))
    got = run_both(matmul_job("fp16", a.astype(np.float64), b.astype(np.float64), out="fp16"),
                   tmp_path)
    ref = (a[:, 0, :] @ b.T).astype(np.float32).astype(np.float16)
    assert (np.abs(a[:, 0, :] @ b.T) > 2048).any()          # fp16 rounding shows
    assert (got[:, 0, :] == ref).all()


def test_float_range_past_fp16(tmp_path):
    """bf16 and tf32 keep fp32's range (GN: products ~1.9e10 pass): 2^40-sized integer values."""
    a = np.full((4, 1, 32), 2.0 ** 20)
    a[1] = -(2.0 ** 21)
    b = np.full((16, 32), 3.0 * 2.0 ** 18)
    for prec in ("bf16", "tf32"):
        got = run_both(matmul_job(prec, a, b), tmp_path)
        assert (got[:, 0, :] == (a[:, 0, :] @ b.T).astype(np.float32)).all()


# ---- float precisions: random data ----

def bf16_round(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def tf32_round(x):
    """Round to 11 significant bits, ties to even (numpy: independent of both models)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    return np.ldexp(np.round(m * 2048), e - 11)


@pytest.mark.parametrize("prec", ["fp16", "bf16", "tf32"])
def test_float_matmul_random(prec, tmp_path):
    """Random operands: core = reference bit for bit (the Q19 rule); against float64 numpy of the
    operands as the MAC sees them (tf32: mantissa rounded to 10 bits), within one fp32 rounding
    (GN: bf16 max_rel ~1e-6, tf32 1.5e-7 against a tf32-rounded reference)."""
    rng = np.random.default_rng({"fp16": 1, "bf16": 2, "tf32": 3}[prec])
    m, k, n = 16, 256, 48
    a, b = rng.standard_normal((m, 1, k)), rng.standard_normal((n, k))
    if prec == "fp16":
        a, b = a.astype(np.float16).astype(np.float64), b.astype(np.float16).astype(np.float64)
    elif prec == "bf16":
        a, b = bf16_round(a), bf16_round(b)
    got = run_both(matmul_job(prec, a, b), tmp_path)[:, 0, :].astype(np.float64)
    am, bm = (tf32_round(a), tf32_round(b)) if prec == "tf32" else (a, b)
    ref = am[:, 0, :] @ bm.T
    scale = np.abs(am[:, 0, :]) @ np.abs(bm).T
    assert (np.abs(got - ref) <= 2.0 ** -24 * np.abs(ref) + 1e-12 * scale).all()
    if prec == "tf32":       # the 10-bit mantissa shows against full fp32 operands
        assert np.abs(got - a[:, 0, :] @ b.T).max() > 1e3 * np.abs(got - ref).max()


def test_fp32_sum_rounds_once(tmp_path):
    """The Q19 inference made visible: 2^24 + 1 + 1 sums exactly to 2^24 + 2 (one rounding at
    the end), where a sequential fp32 sum would give 2^24 twice over."""
    a = np.zeros((4, 1, 32))
    a[:, 0, :3] = [2.0 ** 12, 1.0, 1.0]
    b = np.zeros((16, 32))
    b[:, :3] = [2.0 ** 12, 1.0, 1.0]
    got = run_both(matmul_job("fp16", a, b), tmp_path)
    assert (got == np.float32(2 ** 24 + 2)).all()


def test_float_sum_edges(tmp_path):
    """The one rounding at the end (Q19), on bf16 products: ties to even, just past a tie, a tie
    into fp32's subnormals, cancellation a sequential fp32 sum would lose, overflow to inf, and
    inf * 0 = NaN; core = reference."""
    rows = [1.0, 2.0 ** -75, 2.0 ** 100, 1.0]
    cols = [[2.0 ** 24, 1.0],                    # row 0: tie -> 2^24 (even)
            [2.0 ** 24, 1.0, 2.0 ** -20],        # just past the tie -> 2^24 + 2
            [2.0 ** 24, 3.0],                    # tie -> 2^24 + 4 (even)
            [2.0 ** 100, 1.0, -(2.0 ** 100)],   # -> 1 exactly
            [2.0 ** -75],                        # row 1: 2^-150, a tie -> +0
            [2.0 ** -75, 2.0 ** -76],            # 1.5 * 2^-150 -> 2^-149
            [2.0 ** 30]]                         # row 2: 2^130 -> inf
    a = np.zeros((4, 1, 32))
    for m, v in enumerate(rows):
        a[m, 0, :] = v
    b = np.zeros((16, 32))
    for n, c in enumerate(cols):
        b[n, :len(c)] = c
    b[7, 0] = np.inf                             # row 3 (and all rows): inf * finite = inf
    got = run_both(matmul_job("bf16", a, b), tmp_path)[:, 0, :]
    f32 = np.float32
    assert got[0, 0] == f32(2 ** 24) and got[0, 1] == f32(2 ** 24 + 2)
    assert got[0, 2] == f32(2 ** 24 + 4) and got[0, 3] == 1.0
    assert got[1, 4] == 0.0 and got[1, 5] == f32(2.0 ** -149)
    assert got[2, 6] == np.inf and got[3, 7] == np.inf
    b[8, :2] = [np.inf, 0.0]                     # and a zero feature: inf * 0 = NaN
    a[3, 0, 0] = 0.0
    got = run_both(matmul_job("bf16", a, b), tmp_path)[:, 0, :]
    assert np.isnan(got[3, 8]) and got[0, 8] == np.inf


def test_int4_raw_accumulator_chain(tmp_path):
    """GN regcmd-task-model.md: chained int8/int4 raw-accumulator (QD_EN 0) tasks compute task 0
    right and later ones as garbage: quirk chain-int-acc applies to int4 as to int8."""
    rng = np.random.default_rng(31)
    a, b1, b2 = (rand_ints(rng, -8, 7, (4, 1, 64)), rand_ints(rng, -8, 7, (64, 64)),
                 rand_ints(rng, -8, 7, (64, 64)))
    lay = tinyjob.Layout(0x100000)
    x, w1, w2 = feature(a, "int4"), weights(b1.reshape(64, 1, 1, 64), "int4"), \
        weights(b2.reshape(64, 1, 1, 64), "int4")
    xi, wi1, wi2 = lay.take(len(x)), lay.take(len(w1)), lay.take(len(w2))
    size = 8 * 4 * 16
    o1, o2 = lay.take(size), lay.take(size)
    segs, kick = chain(lay, [conv_regs("int4", "int16", 1, 4, 64, 64, xi, wi1, o1),
                             conv_regs("int4", "int16", 1, 4, 64, 64, xi, wi2, o2)])
    segs.update({xi: x, wi1: w1, wi2: w2, o1: bytes(size), o2: bytes(size)})
    j = {"segments": segs, "kicks": [kick], "out": (o2, size), "shape": (4, 1, 64),
         "outp": "int16"}
    ideal = run_both(j, tmp_path, quirks="-chain-int-acc")
    assert (ideal[:, 0, :] == a[:, 0, :] @ b2.T).all()
    real = run_both(j, tmp_path, quirks="on")
    assert (real != ideal).any()


# ---- geometry ----

def test_fp16_row_major(tmp_path):
    """GROUP_LINE_OFF with LINE_STRIDE = one row of A in atoms and SURF_STRIDE 0 reads plain
    A[M][K] (GN matmul-as-conv.md, exact on hardware)."""
    rng = np.random.default_rng(11)
    m, k, n = 12, 64, 32
    a, b = rand_ints(rng, -9, 9, (m, 1, k)), rand_ints(rng, -9, 9, (n, k))
    j = matmul_job("fp16", a.astype(np.float64), b.astype(np.float64), row_major=True)
    xi = min(i for i in j["segments"] if len(j["segments"][i]) == len(feature(a, "fp16")))
    j["segments"][xi] = a[:, 0, :].astype(np.float16).tobytes()       # plain rows
    got = run_both(j, tmp_path)
    assert (got[:, 0, :] == (a[:, 0, :] @ b.T)).all()


def test_fp16_conv3x3_padded(tmp_path):
    """A 3x3 fp16 convolution with a pad value (PAD_CON1 as fp16 bits, L) and stride 2."""
    rng = np.random.default_rng(13)
    h, w, c, k = 9, 10, 24, 16
    a = rand_ints(rng, -6, 6, (h, w, c)).astype(np.float64)
    wt = rand_ints(rng, -6, 6, (k, 3, 3, c)).astype(np.float64)
    lay = tinyjob.Layout(0x100000)
    x, wb = feature(a, "fp16"), weights(wt, "fp16")
    xi, wi = lay.take(len(x)), lay.take(len(wb))
    ho, wo = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    size = -(-k // 4) * wo * ho * 16
    oi = lay.take(size)
    regs = conv_regs("fp16", "fp32", w, h, c, k, xi, wi, oi, kh=3, kw=3, stride=2, pad=(1, 1),
                     pad_value=0x3C00)                               # 1.0
    segs, kick = chain(lay, [regs])
    segs.update({xi: x, wi: wb, oi: bytes(size)})
    j = {"segments": segs, "kicks": [kick], "out": (oi, size), "shape": (ho, wo, k),
         "outp": "fp32"}
    got = run_both(j, tmp_path)
    ap = np.pad(a, ((1, 1), (1, 1), (0, 0)), constant_values=1.0)
    ref = np.zeros((ho, wo, k))
    for y in range(ho):
        for xx in range(wo):
            ref[y, xx] = np.einsum("yxc,kyxc->k", ap[2 * y:2 * y + 3, 2 * xx:2 * xx + 3], wt)
    assert (got == ref).all()


def test_fp16_depthwise(tmp_path):
    """fp16 depthwise (GN depthwise-conv.md: weight group 32, SIZE_E 3, SURFACE_ADD x4 for fp16
    out), 3x3, 40 channels (a partial group)."""
    rng = np.random.default_rng(17)
    h, w, c = 6, 7, 40
    a = rand_ints(rng, -8, 8, (h, w, c)).astype(np.float64)
    wt = rand_ints(rng, -8, 8, (3, 3, c)).astype(np.float64)
    lay = tinyjob.Layout(0x100000)
    x, wb = feature(a, "fp16"), weights(wt, "fp16", dw=True)
    xi, wi = lay.take(len(x)), lay.take(len(wb))
    ho, wo = h - 2, w - 2
    size = -(-c // 8) * wo * ho * 16 + 4 * wo * ho * 16
    oi = lay.take(size)
    regs = conv_regs("fp16", "fp16", w, h, c, c, xi, wi, oi, kh=3, kw=3, dw=True)
    segs, kick = chain(lay, [regs])
    segs.update({xi: x, wi: wb, oi: bytes(size)})
    j = {"segments": segs, "kicks": [kick], "out": (oi, -(-c // 8) * wo * ho * 16),
         "shape": (ho, wo, c), "outp": "fp16"}
    got = run_both(j, tmp_path)
    ref = np.zeros((ho, wo, c))
    for y in range(ho):
        for xx in range(wo):
            ref[y, xx] = np.einsum("yxc,yxc->c", a[y:y + 3, xx:xx + 3], wt)
    assert (got == ref.astype(np.float16)).all()


def test_fp16_slab_wrap_boundary(tmp_path):
    """Quirk entry-slab-wrap on fp16 bytes (IR dtype_boundary_probe: fp16 K 768, 89 columns
    exact, 90 wrong): the 1x1 conv over one long row."""
    rng = np.random.default_rng(19)
    for w, wraps in ((89, False), (90, True)):
        a = rand_ints(rng, -3, 3, (1, w, 768)).astype(np.float64)
        b = rand_ints(rng, -3, 3, (16, 768)).astype(np.float64)
        j = matmul_job("fp16", a, b)
        got, rc, err = run_core(j, tmp_path, tag=f"w{w}")
        assert rc == 0 and ("entry-slab-wrap" in err) == wraps
        mem, _ = hwref.run_job(j["segments"], j["kicks"])
        assert mem.read(*j["out"]) == got
        ok = (unpack_out(got, "fp32", 1, w, 16) == np.einsum("hwc,kc->hwk", a, b)).all()
        assert ok != wraps


def test_fp16_cbuf_overflow_boundary(tmp_path):
    """Quirk cbuf-data-overflow on fp16 bytes (IR conv.rs: fp16 Cin 16 at 113 columns needs 57
    units a row; 99 rows want 5643 of 11 banks' 5632 and lose the last row, 98 fit)."""
    rng = np.random.default_rng(37)
    for h, lost in ((98, False), (99, True)):
        a = rand_ints(rng, -3, 3, (h, 113, 16)).astype(np.float64)
        b = rand_ints(rng, -3, 3, (16, 16)).astype(np.float64)
        j = matmul_job("fp16", a, b)
        got, rc, err = run_core(j, tmp_path, tag=f"h{h}")
        assert rc == 0 and ("cbuf-data-overflow" in err) == lost
        mem, _ = hwref.run_job(j["segments"], j["kicks"])
        assert mem.read(*j["out"]) == got
        bad = (unpack_out(got, "fp32", h, 113, 16) != np.einsum("hwc,kc->hwk", a, b)).any(
            axis=(1, 2))
        assert list(np.nonzero(bad)[0]) == ([h - 1] if lost else [])


def test_refusals(tmp_path):
    """Mixed CNA/CORE precisions, the DPU at tf32's 7 (GN: writes nothing), a reserved code."""
    a, b = np.ones((4, 1, 32)), np.ones((16, 32))
    for name, val in (("CORE_MISC_CFG", 1 << 8 | 1), ("DPU_DATA_FORMAT", 5 << 29 | 7 << 26 | 7),
                      ("CNA_CONV_CON1", 5 << 4 | 5 << 7)):
        j = matmul_job("tf32" if name == "DPU_DATA_FORMAT" else "fp16", a, b)
        rc_iova, amount, tc = j["kicks"][0]
        seg = bytearray(j["segments"][rc_iova])
        for i in range(0, len(seg), 8):
            e = int.from_bytes(seg[i:i + 8], "little")
            if e >> 48 and e & 0xFFFF == tinyjob.REGS[name] & 0xFFFF and \
                    (e >> 48) == tinyjob.TARGET[tinyjob.REGS[name] >> 12]:
                seg[i:i + 8] = ((e & ~(0xFFFFFFFF << 16)) | val << 16).to_bytes(8, "little")
        j["segments"][rc_iova] = bytes(seg)
        _, rc, err = run_core(j, tmp_path, tag=name)
        assert rc != 0 and "refused" in err
        _, status = hwref.run_job(j["segments"], j["kicks"])
        assert status[0] & hwref.ERR_READ


# ---- K accumulation across tasks (GN k-accumulation.md) ----

def kacc_job(a, b, nk, out_last="fp16"):
    """C = A·B^T with K split into nk slices, one task each, chained in one kick: task ki writes
    buffer ki % 2; ki > 0 adds the previous partial (buffer (ki-1) % 2) through the EW stage:
    EW_CFG 0x108202C0, ERDMA_CFG 0x40000008, FEATURE_MODE_CFG 0x17D40, SRC_BASE = P,
    EW_BASE = P + one surface, EW_SURF_STRIDE = SURF_NOTCH = EW_SURF_NOTCH = max(M, 12) atoms."""
    m, _, k = a.shape
    n = b.shape[0]
    kt = k // nk
    lay = tinyjob.Layout(0x100000)
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
    rsegs, kick = chain(lay, tasks)
    segs.update(rsegs)
    segs.update({bufs[0]: bytes(size), bufs[1]: bytes(size)})
    return {"segments": segs, "kicks": [kick], "out": (bufs[(nk - 1) % 2], size),
            "shape": (m, 1, n), "outp": "fp16"}


def kacc_numpy(a, b, nk):
    """GN's arithmetic: each slice's fp32 sum, added to the fp16 partial in fp32, rounded to fp16
    (slice sums from float64: exact for these operands but for the one final fp32 rounding)."""
    m, _, k = a.shape
    kt = k // nk
    part = None
    for ki in range(nk):
        s = (a[:, 0, ki * kt:(ki + 1) * kt] @ b[:, ki * kt:(ki + 1) * kt].T).astype(np.float32)
        part = (s if part is None else s + part.astype(np.float32)).astype(np.float16)
    return part


def test_fp16_k_accumulation_integer_data(tmp_path):
    """Integer-valued data whose running sums stay within fp16's integers: the chained K
    accumulation (4 tasks, one kick) is exact."""
    rng = np.random.default_rng(23)
    m, k, n = 16, 128, 32
    a, b = rand_ints(rng, -3, 3, (m, 1, k)), rand_ints(rng, -3, 3, (n, k))
    got = run_both(kacc_job(a.astype(np.float64), b.astype(np.float64), 4), tmp_path)
    assert (got[:, 0, :] == a[:, 0, :] @ b.T).all()


def test_fp16_k_accumulation_rounds_each_step(tmp_path):
    """Random data: core = reference bit for bit; equal to the fp16-per-step numpy emulation
    (GN: "the EW running sum accumulates in fp16, and each add rounds") and close to the fp64
    product (GN: ~0.2-0.4 %)."""
    rng = np.random.default_rng(29)
    m, k, n, nk = 16, 512, 48, 8
    a = rng.standard_normal((m, 1, k)).astype(np.float16).astype(np.float64)
    b = rng.standard_normal((n, k)).astype(np.float16).astype(np.float64)
    got = run_both(kacc_job(a, b, nk), tmp_path)[:, 0, :]
    emu = kacc_numpy(a, b, nk)
    assert (got == emu).all()
    ref = a[:, 0, :] @ b.T
    err = np.abs(got.astype(np.float64) - ref)
    assert err.max() <= 0.01 * np.abs(ref).max()
    # an fp32 host sum of the same slices is closer: the per-step fp16 rounding shows
    host = sum((a[:, 0, i * 64:(i + 1) * 64] @ b[:, i * 64:(i + 1) * 64].T).astype(np.float32)
               for i in range(nk))
    assert np.abs(host - ref).max() < err.max()
