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
from precjob import chain, conv_regs, feature, kacc_job, matmul_job, unpack_out, weights
from rknpu import hwref

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "qemu-hw", "tools", "rknpu-run"))


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


@pytest.mark.parametrize("prec", ["bf16", "tf32"])
def test_float_wide_exponents(prec, tmp_path):
    """Operands spread over 2^-60 .. 2^60 (sums of terms 2^240 apart, the model's widest
    accumulator) and over a narrow range, mixed per row: core = reference bit for bit, and within
    one fp32 rounding of the correctly rounded float64 sum (math.fsum)."""
    import math
    rng = np.random.default_rng(41)
    m, k, n = 8, 96, 32
    def spread(shape, lo, hi):
        v = rng.choice([-1.0, 1.0], shape) * (1 + rng.random(shape)) * \
            2.0 ** rng.integers(lo, hi, shape)
        return bf16_round(v) if prec == "bf16" else tf32_round(v)
    a = np.concatenate([spread((m // 2, 1, k), -60, 60), spread((m // 2, 1, k), -4, 4)])
    b = np.concatenate([spread((n // 2, k), -60, 60), spread((n // 2, k), -3, 3)])
    got = run_both(matmul_job(prec, a, b), tmp_path)[:, 0, :].astype(np.float64)
    ref = np.array([[math.fsum(a[i, 0] * b[j]) for j in range(n)] for i in range(m)])
    assert (np.abs(got - ref) <= 2.0 ** -24 * np.abs(ref) + 2.0 ** -149).all()


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
