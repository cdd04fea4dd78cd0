"""The DPU's integer stages beyond Mesa's (HARDWARE-UNKNOWNS Q17): BS and BN multipliers, the EW
operations (max, min, add, minus, abs, neg, mul) and EW operands from the EW_OP_VALUE registers or
from the ERDMA as 8/16/32-bit elements, per pixel or per channel. Mesa-programmed convolutions
with those registers rewritten, run on the C core and on the independent reference (written from
Q17), bit-exact; plus the rules' own arithmetic checked on outputs where it shows directly."""
import numpy as np
import pytest

from rknpu import mesatask as mt
from test_quirks import both, ideal, mk_op, patch, set_field

EW_OFF = 0x7000000          # where the tests put ERDMA operands (clear of mesatask's buffers)


def ew_cfg(op_type=0, algo=2, src=1, size=1, mode=1, cvt_bypass=1):
    """An EW_CFG word: stage and operand on, LUT and ReLU bypassed."""
    return (op_type << 2 | src << 6 | 1 << 7 | cvt_bypass << 8 | 1 << 9 | algo << 16 |
            size << 22 | mode << 28)


def conv(seed=1, oc=40):
    op = mk_op(6, 5, 24, oc=oc, k=3, seed=seed)
    return op, mt.build_job(op)


def check(job, tmp_path, tag):
    r = both(job, tmp_path, "on", tag)
    assert not r.hang and not r.fired, (r.hang, r.fired)
    assert not any(s & 0x3000 for s in r.status), [hex(s) for s in r.status]   # not refused
    return np.frombuffer(r.out, np.int8)


@pytest.mark.parametrize("operand,shift,neg", [(0x3800, 14, 14), (-3, 2, 5), (0x7FFF, 20, 0),
                                               (-0x8000, 18, 18)])
def test_bs_multiplier(operand, shift, neg, tmp_path):
    """BS = (acc + bias) · C >> shift (ties to even; the negative shift for negative products)."""
    op, job = conv()
    base = ideal(job, tmp_path)
    j = patch(job, {"DPU_BS_CFG": lambda v: v & ~(1 << 4),
                    "DPU_BS_MUL_CFG": (operand & 0xFFFF) << 16 | shift << 8,
                    "DPU_DATA_FORMAT": set_field("DPU_DATA_FORMAT", "BS_MUL_SHIFT_VALUE_NEG", neg)})
    out = check(j, tmp_path, f"bs{operand}")
    assert out.tobytes() != base


def test_bn_multiplier_then_alu(tmp_path):
    """BN multiplies first, then adds its ALU operand: a BN ALU operand of A with MUL C differs
    from the BS order (A first) — both run, bit-exact against the reference."""
    op, job = conv(2)
    j = patch(job, {"DPU_BN_CFG": lambda v: 0x12,       # BN on: ALU add (register), MUL, ReLU
                    "DPU_BN_ALU_CFG": 5000, "DPU_BN_MUL_CFG": 3 << 16 | 1 << 8})
    check(j, tmp_path, "bn")


@pytest.mark.parametrize("algo", [0, 1, 2, 4, 5, 6])
def test_ew_alu_from_registers(algo, tmp_path):
    """EW_OP_SRC 0: channel c's operand is EW_OP_VALUE_[(c/8)%8]; max, min, add, minus, abs, neg."""
    op, job = conv(3)
    regs = {"DPU_EW_CFG": ew_cfg(algo=algo, src=0)}
    for n in range(8):
        regs[f"DPU_EW_OP_VALUE_{n}"] = (n * 7919 - 20000) & 0xFFFFFFFF
    check(patch(job, regs), tmp_path, f"alu{algo}")


def test_ew_register_lanes(tmp_path):
    """A large operand in EW_OP_VALUE_1 alone moves exactly channels 8-15 and 72-79... (n = 1)."""
    op, job = conv(4, oc=80)
    base = np.frombuffer(ideal(job, tmp_path), np.int8)
    regs = {"DPU_EW_CFG": ew_cfg(algo=2, src=0), "DPU_EW_OP_VALUE_1": 1 << 28}
    out = check(patch(job, regs), tmp_path, "lanes")
    g = mt.read_output(job, out.tobytes()).astype(int) - mt.read_output(job, base.tobytes())
    moved = sorted(set(np.nonzero(g)[-1]))
    assert moved == [c for c in range(80) if (c // 8) % 8 == 1]


def erdma(job, size, mode, values):
    """Put an operand (int array [co] per channel, or [ho, wo, co] per pixel) for the ERDMA."""
    eb = {1: 1, 2: 2, 3: 4}[size]
    c2 = 16 // eb
    ho, wo = values.shape[:2] if mode == 1 else (1, 1)
    co = values.shape[-1]
    nsurf = -(-co // c2)
    stride = 16 if mode == 0 else ho * wo * 16
    buf = np.zeros((nsurf, (1 if mode == 0 else ho * wo), c2), dtype=f"<i{eb}")
    flat = values.reshape(-1, co)
    for c in range(co):
        buf[c // c2, :, c % c2] = flat[:, c]
    job = dict(job, segments=dict(job["segments"]))
    job["segments"][EW_OFF] = buf.tobytes()
    return job, stride


@pytest.mark.parametrize("size,mode,op_type,algo", [
    (2, 1, 0, 2), (3, 1, 0, 4), (2, 0, 0, 0), (3, 0, 0, 1), (1, 0, 1, 0), (2, 1, 1, 0),
    (3, 1, 1, 0)])
def test_ew_operand_from_erdma(size, mode, op_type, algo, tmp_path):
    """ERDMA operands of 1/2/4 bytes, C2 = 16/e an atom, per pixel (mode 1) or per channel
    (mode 0); MUL with 32-bit data reads the operand's low 16 bits, signed."""
    op, job = conv(5)
    ho, wo = mt.read_output(job, bytes(job["out"][1])).shape[:2]
    co = 40
    rng = np.random.default_rng(size * 10 + mode)
    lim = {1: 100, 2: 30000, 3: 1 << 30}[size] if op_type == 0 else {1: 5, 2: 5, 3: 1 << 20}[size]
    vals = rng.integers(-lim, lim, (ho, wo, co) if mode == 1 else (co,))
    j, stride = erdma(job, size, mode, vals)
    j = patch(j, {"DPU_EW_CFG": ew_cfg(op_type, algo, 1, size, mode),
                  "DPU_RDMA_ERDMA_CFG": mode << 30 | size << 2,
                  "DPU_RDMA_EW_BASE_ADDR": EW_OFF, "DPU_RDMA_EW_SURF_STRIDE": stride,
                  "DPU_RDMA_FEATURE_MODE_CFG": 0x7810,
                  "DPU_RDMA_DATA_CUBE_WIDTH": wo - 1, "DPU_RDMA_DATA_CUBE_HEIGHT": ho - 1})
    check(j, tmp_path, f"erdma{size}{mode}{op_type}{algo}")


def test_refused_forms(tmp_path):
    """DIV (3) and the 4-bit operand are refused with an error completion, here and there."""
    op, job = conv(6)
    for regs in ({"DPU_EW_CFG": ew_cfg(algo=3, src=0)},
                 {"DPU_EW_CFG": ew_cfg(size=0), "DPU_RDMA_ERDMA_CFG": 1 << 30}):
        r = both(patch(job, regs), tmp_path, "on", "refused")
        assert r.status == [0x1000 | 0x100] or any(s & 0x1000 for s in r.status)
