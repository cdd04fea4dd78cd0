"""DPU-only ("flying") tasks, the fp16 DPU pipeline and the LUT (HARDWARE-UNKNOWNS Q18), programmed
the way the public rocket userspaces program them (op_en 0x18, FLYING_MODE 1, the MRDMA reading the
main tensor, the ERDMA the second operand), on the C core (rknpu-run) and on the independent
reference (rknpu/hwflying.py, from Q18), bit-exact, and against numpy arithmetic and the hardware
observations: exact saturating integer EW ops, fp16 ops rounded once, the LUT sigmoid within the
0.00146 GN measured on a board, ORIG_CHANNEL 0 computing lane 0 only, COMB_USE 1 hanging."""
import os
import subprocess

import numpy as np
import pytest

import tinyjob
from rknpu import hwref

RKNPU_RUN = os.environ.get("RKNPU_RUN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "qemu-hw", "tools", "rknpu-run"))
PREC = {"int8": (0, 1, "<i1"), "int16": (1, 2, "<i2"), "int32": (4, 4, "<i4"),
        "fp16": (2, 2, "<f2")}
# IOVAs of the regcmd, main tensor, operand and output (the board test packs them from 0)
HOST = {"regcmd": 0x10000, "main": 0x100000, "operand": 0x200000, "out": 0x300000}


def atoms(t, eb):
    """[h, w, c] -> surfaces of 16-byte atoms, C2 = 16/e channels each."""
    h, w, c = t.shape
    c2 = 16 // eb
    buf = np.zeros((-(-c // c2), h, w, c2), dtype=t.dtype)
    for ch in range(c):
        buf[ch // c2, :, :, ch % c2] = t[:, :, ch]
    return buf.tobytes()


def unatoms(raw, h, w, c, dt):
    eb = np.dtype(dt).itemsize
    c2 = 16 // eb
    buf = np.frombuffer(raw, dtype=dt).reshape(-1, h, w, c2)
    return np.stack([buf[ch // c2, :, :, ch % c2] for ch in range(c)], axis=2)


def job(prec, main, ew_cfg=1, operand=None, out_prec=None, extra=(), orig=None, lut=None,
        at=HOST):
    """One DPU-only task on main [h, w, c]; the EW operand (same shape) from the ERDMA."""
    REGCMD, MAIN, OPND, OUT = at["regcmd"], at["main"], at["operand"], at["out"]
    code, eb, dt = PREC[prec]
    h, w, c = main.shape
    out_code = code if out_prec is None else out_prec
    fp16 = prec == "fp16"
    surf = w * h * 16
    regs = [("DPU_S_POINTER", 0xE), ("DPU_RDMA_S_POINTER", 0xE)]
    if lut is not None:                      # LUT_ACCESS_CFG: write, table, address 0; then DATA
        for t in (0, 1):
            regs += [("DPU_LUT_ACCESS_CFG", 1 << 17 | t << 16)]
            regs += [("DPU_LUT_ACCESS_DATA", int(v) & 0xFFFF) for v in lut[t]]
    regs += [
        ("DPU_FEATURE_MODE_CFG", 0x1E5),
        ("DPU_RDMA_FEATURE_MODE_CFG", 1 | code << 15 | code << 5 | (8 if fp16 else 0) | 15 << 11),
        ("DPU_DATA_FORMAT", out_code << 29 | code << 26 | code),
        ("DPU_DATA_CUBE_WIDTH", w - 1), ("DPU_DATA_CUBE_HEIGHT", h - 1),
        ("DPU_DATA_CUBE_CHANNEL", (c - 1 if orig is None else orig) << 16 | (c - 1)),
        ("DPU_RDMA_DATA_CUBE_WIDTH", w - 1), ("DPU_RDMA_DATA_CUBE_HEIGHT", h - 1),
        ("DPU_RDMA_DATA_CUBE_CHANNEL", c - 1), ("DPU_RDMA_SRC_BASE_ADDR", MAIN),
        ("DPU_DST_BASE_ADDR", OUT), ("DPU_DST_SURF_STRIDE", surf), ("DPU_SURFACE_ADD", surf),
        ("DPU_BS_CFG", 0x53), ("DPU_BN_CFG", 0x53), ("DPU_BS_OW_CFG", 0x2), ("DPU_EW_CFG", ew_cfg),
        ("DPU_OUT_CVT_SCALE", 1 | (1 << 16 if fp16 and out_code == 2 else 0)),
        ("DPU_OUT_CVT_SHIFT", 0), ("DPU_OUT_CVT_OFFSET", 0),
        ("DPU_RDMA_BRDMA_CFG", 1), ("DPU_RDMA_NRDMA_CFG", 1), ("DPU_RDMA_ERDMA_CFG", 1),
        # the register file outlives a job (HARDWARE-UNKNOWNS Q2): write what an earlier job
        # (a K-accumulation's notches, say) may have left
        ("DPU_RDMA_SRC_DMA_CFG", 0), ("DPU_RDMA_SURF_NOTCH", 0), ("DPU_RDMA_EW_SURF_NOTCH", 0),
        ("DPU_DATA_CUBE_NOTCH_ADDR", 0), ("DPU_OFFSET_PEND", 0), ("DPU_EW_CVT_OFFSET_VALUE", 0),
        ("DPU_EW_CVT_SCALE_VALUE", 0)]
    segs = {MAIN: atoms(main, eb)}
    if operand is not None:
        size = {1: 1, 2: 2, 4: 3}[operand.dtype.itemsize]
        regs += [("DPU_RDMA_ERDMA_CFG", 1 << 30 | size << 2), ("DPU_RDMA_EW_BASE_ADDR", OPND),
                 ("DPU_RDMA_EW_SURF_STRIDE", surf)]
        segs[OPND] = atoms(operand, operand.dtype.itemsize)
    regs += list(extra)
    prog, amount = tinyjob.regcmd(regs, op_en=0x18)
    oeb = {0: 1, 1: 2, 2: 2, 4: 4, 5: 4}[out_code]
    size = -(-c // (16 // oeb)) * surf
    segs[REGCMD], segs[OUT] = prog, bytes(size)
    return {"segments": segs, "kicks": [(REGCMD, amount, 0x7001)], "out": (OUT, size)}


def run(j, tmp_path, tag="job"):
    """Core and reference; they must agree. Returns (output bytes, status, stderr)."""
    d = str(tmp_path / tag)
    tinyjob.write_job_dir(j, d)
    res = subprocess.run([RKNPU_RUN, "-q", "-o", d, d], capture_output=True, text=True)
    mem, status = hwref.run_job(j["segments"], j["kicks"])
    ref = mem.read(*j["out"])
    with open(os.path.join(d, "out.bin"), "rb") as f:
        core = f.read()
    assert core == ref, f"core and reference differ in " \
        f"{sum(a != b for a, b in zip(core, ref))} bytes: {res.stderr[-500:]}"
    return core, status, res


def ew(op_type, algo, size):
    """EW_CFG: operand from the ERDMA per pixel, converter and ReLU bypassed, LUT off."""
    return op_type << 2 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9 | algo << 16 | size << 22 | 1 << 28


OPS = {"add": (0, 2, np.add), "minus": (0, 4, np.subtract), "max": (0, 0, np.maximum),
       "min": (0, 1, np.minimum), "mul": (1, 0, np.multiply)}


@pytest.mark.parametrize("prec", ["int8", "int16", "int32"])
@pytest.mark.parametrize("op", list(OPS))
def test_integer_binary_ops(prec, op, tmp_path):
    """Exact and saturating to the type; int32 MUL reads the operand's low 16 bits, signed."""
    code, eb, dt = PREC[prec]
    rng = np.random.default_rng(hash((prec, op)) % 2**32)
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, (3, 5, 20)).astype(dt)
    b = rng.integers(info.min, info.max, (3, 5, 20)).astype(dt)
    t, algo, fn = OPS[op]
    out, status, res = run(job(prec, a, ew(t, algo, {1: 1, 2: 2, 4: 3}[eb]), b), tmp_path)
    assert status == [0x100], res.stderr
    bb = b.astype(np.int64)
    if op == "mul" and prec == "int32":
        bb = ((bb & 0xFFFF) ^ 0x8000) - 0x8000
    want = np.clip(fn(a.astype(np.int64), bb), max(info.min, -2**31), min(info.max, 2**31 - 1))
    assert (unatoms(out, 3, 5, 20, dt) == want).all()


@pytest.mark.parametrize("op", ["add", "max", "min", "mul"])
def test_fp16_binary_ops(op, tmp_path):
    """fp16: fp16(fp32(a) op fp32(b)), one rounding (GN: bit-exact to n = 40000)."""
    rng = np.random.default_rng(7)
    a = rng.normal(0, 30, (2, 9, 24)).astype(np.float16)
    b = rng.normal(0, 30, (2, 9, 24)).astype(np.float16)
    t, algo, fn = OPS[op]
    out, status, _ = run(job("fp16", a, ew(t, algo, 2), b), tmp_path)
    want = fn(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
    assert (unatoms(out, 2, 9, 24, "<f2") == want).all()


def sigmoid_regs():
    """GN's / librocketnpu's sigmoid LUT program (HARDWARE-UNKNOWNS Q18 table)."""
    sig = lambda x: 1 / (1 + np.exp(-x))
    i = np.arange(513)
    le = np.clip(np.round(32768 * sig(-(512 - i) * 32 / 2596)), 0, 32767)
    lo = np.clip(np.round(32768 * sig(i * 32 / 2596)), 0, 32767)
    regs = [("DPU_LUT_CFG", 0x68), ("DPU_LUT_INFO", 5 << 8 | 5 << 16),
            ("DPU_LUT_LE_START", 0xFFFFC000), ("DPU_LUT_LO_END", 0x4000),
            ("DPU_LUT_LE_SLOPE_SCALE", 23107), ("DPU_LUT_LE_SLOPE_SHIFT", 22),
            ("DPU_BN_CFG", 2 << 16 | 1 << 6), ("DPU_BN_MUL_CFG", 0x6912 << 16),
            ("DPU_BN_ALU_CFG", 0x80000000), ("DPU_EW_CFG", 0x300),
            ("DPU_OUT_CVT_OFFSET", 1), ("DPU_OUT_CVT_SHIFT", 1 << 31 | 15 << 12)]
    return (le, lo), regs


def test_lut_sigmoid(tmp_path):
    """Within 0.00146 of the CPU's sigmoid, as GN measured on a board; the LUT's extrapolation
    below LE_START and core == reference everywhere."""
    lut, regs = sigmoid_regs()
    x = np.linspace(-6.2, 6.2, 8 * 64).astype(np.float16).reshape(1, 64, 8)
    out, status, res = run(job("fp16", x, 0x300, lut=lut, extra=regs), tmp_path)
    assert status == [0x100], res.stderr
    got = unatoms(out, 1, 64, 8, "<f2").astype(np.float64)
    want = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.abs(got - want).max() <= 0.00146
    far = np.linspace(-12, 12, 64).astype(np.float16).reshape(1, 8, 8)   # past both ends
    run(job("fp16", far, 0x300, lut=lut, extra=regs), tmp_path, "far")


def test_lut_nan_and_infinities(tmp_path):
    """A NaN goes through the LUT as a NaN (the fuzzer's finding: the core cast floor(NaN) to an
    index); ±inf extrapolate from the ends, to ±inf or, with a zero slope, NaN."""
    lut, regs = sigmoid_regs()
    x = np.array([np.nan, np.inf, -np.inf, 0.5, -0.5, np.nan, 1e4, -1e4],
                 dtype=np.float16).reshape(1, 1, 8)
    for tag, extra in (("slopes", regs), ("flat", regs + [("DPU_LUT_LE_SLOPE_SCALE", 0)])):
        out, status, res = run(job("fp16", x, 0x300, lut=lut, extra=extra), tmp_path, tag)
        assert status == [0x100], res.stderr
        got = unatoms(out, 1, 1, 8, "<f2")[0, 0]
        assert np.isnan(got[[0, 5]]).all() and np.isfinite(got[[3, 4]]).all(), got


def test_orig_channel_zero_computes_lane_zero(tmp_path):
    """GN: ORIG_CHANNEL 0 leaves only lane 0 of each atom right, zeros elsewhere."""
    a = np.arange(-60, 60, dtype=np.int8).reshape(2, 3, 20)
    out, status, _ = run(job("int8", a, 1, orig=0), tmp_path)
    got = unatoms(out, 2, 3, 20, "<i1")
    assert (got[:, :, 0] == a[:, :, 0]).all() and not got[:, :, 1:].any()


def test_comb_use_hangs(tmp_path):
    """GN sdp-stage-precision: COMB_USE 1 or 5 in a DPU-only task never completes."""
    a = np.ones((1, 4, 16), dtype=np.int8)
    j = job("int8", a, 1, extra=[("DPU_RDMA_FEATURE_MODE_CFG", 1 | 5 << 8 | 15 << 11)])
    out, status, res = run(j, tmp_path)
    assert status == [0] and "hang" in res.stderr and "(quirk flying-comb-use)" in res.stderr


@pytest.mark.parametrize("lut_on", [True, False])
def test_large_task_memoised(lut_on, tmp_path):
    """From 32768 elements the core memoises an fp16 task's results by input value (no EW
    operand): every half but the NaNs (the reference keeps their payloads through the fp32
    pipeline, the core writes 0x7E00), infinities included, against the reference."""
    lut, regs = sigmoid_regs()
    h = np.arange(65536, dtype=np.uint16)
    h[(h & 0x7C00) == 0x7C00] &= 0xFC00           # NaNs -> ±inf
    x = h.view(np.float16).reshape(64, 64, 16)
    x = np.concatenate([x, x[::-1]], axis=0)      # each value twice, in two orders
    if lut_on:
        j = job("fp16", x, 0x300, lut=lut, extra=regs)
    else:                                         # BN mul and add, ReLU, OUT_CVT, fp32 out
        j = job("fp16", x, 1, out_prec=5, extra=regs[6:9] + [("DPU_OUT_CVT_SHIFT", 3)])
    out, status, res = run(j, tmp_path)
    assert status == [0x100], res.stderr


def test_large_task_memoised_per_channel_operand(tmp_path):
    """With a BRDMA operand per channel the memo holds a channel (32768 pixels and more): it is
    started again where the operand changes, kept where it repeats."""
    lut, regs = sigmoid_regs()
    rng = np.random.default_rng(5)
    h = rng.permutation(np.tile(np.arange(65536, dtype=np.uint16), 2))
    h[(h & 0x7C00) == 0x7C00] &= 0xFC00           # no NaNs (see above)
    x = h.view(np.float16).reshape(128, 256, 4)
    bias = np.array([0.5, 0.5, -1.0, 2.0], dtype=np.float32)
    BIAS = 0x280000
    j = job("fp16", x, 0x300, lut=lut, extra=regs + [
        ("DPU_BS_CFG", 0x20150), ("DPU_RDMA_BRDMA_CFG", 2), ("DPU_RDMA_BS_BASE_ADDR", BIAS)])
    j["segments"][BIAS] = bias.tobytes()
    out, status, res = run(j, tmp_path)
    assert status == [0x100], res.stderr
    got = unatoms(out, 128, 256, 4, "<f2").astype(np.float64)
    one = (x.astype(np.float64) > -4) & (x.astype(np.float64) < 4)
    with np.errstate(over="ignore"):   # exp of the large negative inputs: inf, want 0
        want = 1 / (1 + np.exp(-(x.astype(np.float64) + bias)))   # the operand applies
    assert np.abs(got - want)[one].max() <= 0.002
