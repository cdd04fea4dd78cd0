"""Plain TFLite uint8 reference math (per-tensor quantisation), independent of the NPU model:
QuantizeMultiplier to a Q31 multiplier, SaturatingRoundingDoublingHighMul, RoundingDivideByPOT."""
import math

import numpy as np


def quantize_multiplier(m):
    """double m > 0 -> (q31 multiplier, shift) with m = q * 2^(shift - 31)."""
    if m == 0:
        return 0, 0
    frac, exp = math.frexp(m)
    q = int(round(frac * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        exp += 1
    return q, exp


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul on int64 arrays (b scalar)."""
    a = np.asarray(a, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return _div_trunc(ab + nudge, 1 << 31)


def _div_trunc(x, d):
    q = np.abs(x) // d
    return np.where(x < 0, -q, q)


def rdbypot(x, e):
    """RoundingDivideByPOT: round half away from zero."""
    if e == 0:
        return x
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def requant(acc, m):
    q, shift = quantize_multiplier(m)
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbypot(srdhm(acc * (1 << left), q), right)


def conv(x, w, bias, zp_in, zp_w, s_in, s_w, s_out, zp_out, stride, pads, dw=False,
         act_min=0, act_max=255):
    """x [H, W, C] uint8, w [OC, KH, KW, C] or [KH, KW, C]; returns [Ho, Wo, OC] uint8 and the
    int32 accumulators."""
    pt, pb, pl, pr = pads
    xi = np.pad(x.astype(np.int64) - zp_in, ((pt, pb), (pl, pr), (0, 0)))
    k = w.shape[0] if dw else w.shape[1]
    ho = (xi.shape[0] - k) // stride + 1
    wo = (xi.shape[1] - k) // stride + 1
    wi = w.astype(np.int64) - zp_w
    win = np.stack([np.stack([xi[ky:ky + stride * ho:stride, kx:kx + stride * wo:stride, :]
                              for kx in range(k)], axis=2) for ky in range(k)], axis=2)
    if dw:
        acc = np.einsum("hwyxc,yxc->hwc", win, wi)
    else:
        acc = np.einsum("hwyxc,oyxc->hwo", win, wi)
    acc = acc + bias.astype(np.int64)
    out = requant(acc, float(s_in) * float(s_w) / float(s_out)) + zp_out
    return np.clip(out, act_min, act_max).astype(np.uint8), acc


def add(a, b, s_a, zp_a, s_b, zp_b, s_out, zp_out):
    """TFLite's quantised uint8 ADD."""
    left = 20
    twice = 2 * max(s_a, s_b)
    ma, mb, mo = s_a / twice, s_b / twice, twice / ((1 << left) * s_out)
    xa = (a.astype(np.int64) - zp_a) * (1 << left)
    xb = (b.astype(np.int64) - zp_b) * (1 << left)
    sa, sb = requant(xa, ma), requant(xb, mb)
    return np.clip(requant(sa + sb, mo) + zp_out, 0, 255).astype(np.uint8)
