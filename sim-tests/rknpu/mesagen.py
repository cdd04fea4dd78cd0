"""Program conv / depthwise / conv+add ops the way Mesa 26.x's rocket driver does
(mesa-rocket-spec §2.2 entry order, §2.4 values, §3 layouts, §3.6 bias fold, §3.8 requant,
§4 task split), producing a job: BO contents at IOVAs and one kick per task.

An op is a dict (see `conv_op`): uint8 tensors in TFLite NHWC order without the batch
dimension, with per-tensor scales and zero points.
"""
import math
import struct

import numpy as np

from .regs import MARKER, entry, op_en

TRUNCATE_SCALES = {0x3a88323f, 0x3c0060de, 0x3c06022d, 0x3c1642e3, 0x3c1e3f51, 0x3c5c8aa8,
                   0x3c615e93, 0x3c7326a2, 0x3c783013, 0x3d1748e6, 0x3d282992, 0x3d2e87ae,
                   0x3d77f5f6, 0x3a9a5956, 0x3caebc56}
TASK_STRIDE = 1088          # 130 entries padded to 64 bytes
CBUF_BANKS = 12


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", float(np.float32(x))))[0]


def align(x, a):
    return (x + a - 1) // a * a


def cdiv(a, b):
    return -(-a // b)


def conv_op(x, w, bias, s_in, zp_in, s_w, zp_w, s_out, zp_out, stride=1, pads=(0, 0, 0, 0),
            depthwise=False, add=None):
    """x [H, W, C] uint8; w [OC, KH, KW, C] (conv) or [KH, KW, C] (depthwise) uint8; bias
    [OC] int32; pads (top, bottom, left, right); add = (y [Ho, Wo, OC] uint8, s_add, zp_add)."""
    return dict(x=x, w=w, bias=bias, s_in=s_in, zp_in=zp_in, s_w=s_w, zp_w=zp_w, s_out=s_out,
                zp_out=zp_out, stride=stride, pads=pads, dw=depthwise, add=add)


def geometry(op):
    h, w, c = op["x"].shape
    k = op["w"].shape[1] if not op["dw"] else op["w"].shape[0]
    oc = c if op["dw"] else op["w"].shape[0]
    pt, pb, pl, pr = op["pads"]
    s = op["stride"]
    return dict(h=h, w=w, c=c, k=k, oc=oc, s=s, pt=pt, pb=pb, pl=pl, pr=pr,
                ho=(h + pt + pb - k) // s + 1, wo=(w + pl + pr - k) // s + 1,
                cal=align(max(c, 16), 16), ocal=ocal(oc, op["dw"]), one=c == 1)


def ocal(oc, dw):
    v = align(max(oc, 32), 32)
    if dw:
        v = align(v * 2 if oc <= 32 else v, 64)
    return v


# ---- memory layouts (§3) ----

def input_bytes(op, g):
    """Partition input as Mesa uploads it."""
    x = op["x"].astype(np.int64)
    if g["one"]:
        row = max(g["w"], 16)
        buf = np.full((g["h"], row), op["zp_in"], dtype=np.uint8)
        buf[:, :g["w"]] = op["x"][:, :, 0]
        return buf.tobytes()
    surfaces = -(-g["c"] // 16)
    t = np.full((surfaces, g["h"], g["w"], 16), op["zp_in"] - 128, dtype=np.int64)
    for ch in range(g["c"]):
        t[ch // 16, :, :, ch % 16] = x[:, :, ch] - 128
    return t.astype(np.int8).tobytes()


def tensor_bo_size(h, w, c):
    return w * h * -(-c // 16) * 2 * 16


def nc1hwc2(t_u8):
    """[H, W, C] uint8 -> Mesa's int8 NC1HWC2 (padded lanes 0)."""
    h, w, c = t_u8.shape
    out = np.zeros((-(-c // 16), h, w, 16), dtype=np.int64)
    for ch in range(c):
        out[ch // 16, :, :, ch % 16] = t_u8[:, :, ch].astype(np.int64) - 128
    return out.astype(np.int8).tobytes()


def weight_bytes(op, g):
    """§3.5: Mesa's packing (not necessarily what the hardware reads, see Q5)."""
    dw, c, oc, k = op["dw"], g["c"], g["oc"], g["k"]
    ko = 1 if dw else align(oc, 2)
    cmax = max(c, 16)
    grp = 64 if dw else 32
    zpb = (op["zp_w"] - 0x80) & 0xFF
    out = bytearray()
    for oc1 in range(-(-ko // 32)):
        for ic1 in range(-(-cmax // grp)):
            for ky in range(k):
                for kx in range(k):
                    for oc2 in range(min(ko, 32)):
                        o = 32 * oc1 + oc2
                        for ic2 in range(min(cmax, grp)):
                            ic = grp * ic1 + ic2
                            if o >= align(oc, 2) and oc > 2:
                                continue
                            if not dw and o >= oc:
                                out.append(0)
                            elif ic >= c:
                                if ic2 < 16 or c % 32 > 16:
                                    out.append(zpb)
                            else:
                                q = op["w"][ky, kx, ic] if dw else op["w"][o, ky, kx, ic]
                                out.append((int(q) - 0x80) & 0xFF)
    return bytes(out)


def truncate_bits(op):
    return 1 if f32_bits(op["s_w"]) in TRUNCATE_SCALES else 0


def bias_bytes(op, g):
    """§3.6: bias minus the input zero-point correction, over 2^truncate (C division)."""
    t = truncate_bits(op)
    w = op["w"].astype(np.int64) - op["zp_w"]
    corr = (op["zp_in"] - 128) * (w.sum(axis=(0, 1)) if op["dw"] else w.sum(axis=(1, 2, 3)))
    hw = [int(math.trunc((int(b) - int(cr)) / (1 << t))) if t else int(b) - int(cr)
          for b, cr in zip(op["bias"], corr)]
    return np.array(hw, dtype="<i4").tobytes()


def out_cvt(op):
    """§3.8: (scale, shift) of OUT_CVT."""
    m = np.float32(op["s_in"]) * np.float32(op["s_w"]) / np.float32(op["s_out"])
    bits = f32_bits(m)
    e = bits >> 23
    scale = ((bits >> 9) & 0x7FFF) + 1
    if scale < 0x4000:
        scale |= 0x4000
    return scale & 0xFFFF, 141 - e - truncate_bits(op)


def ew_cvt(op):
    """§3.8: EW operand converter (scale | shift << 16) and offset for a fused add."""
    _, s_add, zp_add = op["add"]
    a = np.float32(s_add) / (np.float32(op["s_in"]) * np.float32(op["s_w"]))
    bits = f32_bits(a)
    return ((bits >> 9) & 0x7FFF) | 0x4000 | (141 - (bits >> 23)) << 16, (0x80 - zp_add)


def pad_value(op, g):
    """§3.7 PAD_CON1, with Mesa's overrides (last one wins)."""
    v = (op["zp_in"] - 0x80) & 0xFFFFFFFF
    if g["k"] >= 3 and op["zp_in"] == 0:
        v = 0xFFFF8080
    if op["add"] is not None:
        v = 0xFFFFFF80
    if op["dw"] and op["zp_in"] == 0x8B:
        v = 0x0B0B
    return v


# ---- task split (§4) ----

def entries_per_row(w, c):
    a = -(-c // 16)
    full, last = a // 8, a % 8
    return full * w + (w if last == 3 else -(-last * w // 8))


def split_tasks(op, g):
    """Row bands: list of dicts (top, rows, pad_top, pad_bottom, oh) plus bank settings."""
    epr = entries_per_row(g["w"], g["c"])
    in_banks = cdiv(epr * g["h"], 256)
    wbytes = g["k"] * g["k"] * g["c"] * (1 if op["dw"] else g["oc"])
    wb = cdiv(cdiv(wbytes, 128), 256) + 1
    if wb + 1 < CBUF_BANKS:
        reuse, avail_in = True, CBUF_BANKS - wb
    else:
        reuse, avail_in = False, 7
    if in_banks <= avail_in:
        return [dict(top=0, rows=g["h"], pad_top=g["pt"], pad_bottom=g["pb"], oh=g["ho"],
                     data_bank=in_banks, weight_bank=CBUF_BANKS - in_banks)], reuse
    rows_per_task = 256 * avail_in // epr
    tasks, start, done = [], 0, 0
    while start < g["h"] and done < g["ho"]:
        first = not tasks
        rows = min(rows_per_task, g["h"] - start)
        last = start + rows >= g["h"]
        pt, pb = (g["pt"] if first else 0), (g["pb"] if last else 0)
        oh = (rows + pt + pb - g["k"]) // g["s"] + 1
        if oh <= 0:
            break
        oh = min(oh, g["ho"] - done)
        tasks.append(dict(top=start, rows=rows, pad_top=pt, pad_bottom=pb, oh=oh,
                          data_bank=avail_in, weight_bank=CBUF_BANKS - avail_in))
        done += oh
        start = start + oh * g["s"] - pt
    return tasks, reuse
