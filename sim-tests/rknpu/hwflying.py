"""Independent reference of DPU-only ("flying") tasks, the fp16 DPU pipeline and the LUT, written
from qemu-hw/core/HARDWARE-UNKNOWNS.md Q18 (numpy; shares no code with the C core). Used by
hwref.run_task for op_en with DPU but not CNA/CORE."""
import numpy as np

from . import hwref as H
from .regs import field

LUT_N = 513
OUT_BYTES = {0: 1, 1: 2, 2: 2, 4: 4, 5: 4}


def f32(bits):
    return np.array([bits & 0xFFFFFFFF], dtype="<u4").view("<f4")[0].astype(np.float32)


def f16(bits):
    return np.array([bits & 0xFFFF], dtype="<u2").view("<f2")[0].astype(np.float32)


def lut_write(lut, regs_v, a, value):
    """LUT_ACCESS_CFG (0x4100) sets table and address; LUT_ACCESS_DATA (0x4104) stores [15:0]
    there when ACCESS_TYPE is write, then the address moves on."""
    if a == 0x4100:
        lut["table"], lut["addr"] = value >> 16 & 1, value & 0x3FF
    elif regs_v.get(0x4100, 0) >> 17 & 1:
        if lut["addr"] < LUT_N:
            v = value & 0xFFFF
            lut["t"][lut["table"], lut["addr"]] = v - 0x10000 if v & 0x8000 else v
        lut["addr"] = (lut["addr"] + 1) & 0x3FF


def lut_eval(r, T, x):
    """Q18's LUT on the float64 array x."""
    cfg, info = r["DPU_LUT_CFG"], r["DPU_LUT_INFO"]
    start = [H.s32(r["DPU_LUT_LE_START"]), H.s32(r["DPU_LUT_LO_START"])]
    end = [H.s32(r["DPU_LUT_LE_END"]), H.s32(r["DPU_LUT_LO_END"])]
    sel = [info >> 8 & 0xFF, info >> 16 & 0xFF]
    sc = [r["DPU_LUT_LE_SLOPE_SCALE"], r["DPU_LUT_LO_SLOPE_SCALE"]]
    sh = [r["DPU_LUT_LE_SLOPE_SHIFT"], r["DPU_LUT_LO_SLOPE_SHIFT"]]
    hyb, ofl, ufl = cfg >> 6 & 1, cfg >> 5 & 1, cfg >> 4 & 1
    under = [x < start[t] for t in (0, 1)]
    over = [x > end[t] for t in (0, 1)]
    hit = [~under[t] & ~over[t] for t in (0, 1)]
    table = np.where(hit[0] & hit[1], hyb,
            np.where(hit[0], 0, np.where(hit[1], 1,
            np.where(under[0] & under[1], ufl, np.where(over[0] & over[1], ofl,
            np.where((x < start[0]) & (x < start[1]), ufl, ofl))))))
    q = np.where(np.isnan(x), x, 0.0)     # a NaN goes through (Q18, L)
    for t in (0, 1):
        m = (table == t) & ~np.isnan(x)
        xs = x[m]
        tb = T[t].astype(np.float64)
        u_scale, o_scale = H.s16(sc[t]), H.s16(sc[t] >> 16)
        u_shift, o_shift = sh[t] & 0x1F, sh[t] >> 5 & 0x1F
        pos = (xs - start[t]) / 2.0 ** sel[t]
        i = np.clip(np.floor(pos), 0, LUT_N - 1).astype(int)
        nxt = np.minimum(i + 1, LUT_N - 1)
        with np.errstate(invalid="ignore"):   # every branch is computed: inf·0 where not taken
            inside = np.where(pos >= LUT_N - 1, tb[LUT_N - 1],
                              tb[i] + (tb[nxt] - tb[i]) * (pos - i))
            res = np.where(xs < start[t], tb[0] + (xs - start[t]) * u_scale / 2.0 ** u_shift,
                  np.where(xs > end[t], tb[LUT_N - 1] + (xs - end[t]) * o_scale / 2.0 ** o_shift,
                           inside))
        q[m] = res
    return q


def run(r, mem, opn, lut, ql):
    """One DPU-only task; returns error bits, raises hwref.Hang."""
    rfm = r["DPU_RDMA_FEATURE_MODE_CFG"]
    if not opn & 0x10 or rfm >> 4 & 1:
        return H.ERR_READ
    if field("DPU_RDMA_FEATURE_MODE_CFG", "COMB_USE", rfm) & 1 and ql.fire("flying-comb-use"):
        raise H.Hang
    fm, fmt = r["DPU_FEATURE_MODE_CFG"], r["DPU_DATA_FORMAT"]
    if fm & 1 != 1 or fm >> 30 & 1 or fm >> 25 & 1 or fm >> 1 & 3 != 2 or fmt >> 3 & 1:
        return H.ERR_READ
    out_p, in_p, proc = fmt >> 29 & 7, fmt >> 26 & 7, fmt & 7
    half = r["DPU_OUT_CVT_SCALE"] >> 16 & 1
    fp16 = proc == 2
    if in_p != proc or proc not in (0, 1, 2, 4) or field("DPU_RDMA_FEATURE_MODE_CFG",
                                                        "IN_PRECISION", rfm) != in_p:
        return H.ERR_READ
    if fp16 and not ((out_p == 2 and half) or (out_p == 5 and not half)):
        return H.ERR_READ
    if not fp16 and (out_p not in (0, 1, 4, 5) or half):
        return H.ERR_READ
    w, h = r.f("DPU_DATA_CUBE_WIDTH", "WIDTH") + 1, r.f("DPU_DATA_CUBE_HEIGHT", "HEIGHT") + 1
    if (r.f("DPU_RDMA_DATA_CUBE_WIDTH", "WIDTH") + 1, r.f("DPU_RDMA_DATA_CUBE_HEIGHT",
                                                          "HEIGHT") + 1) != (w, h) or \
            r["DPU_RDMA_SRC_DMA_CFG"] & 0x3FFF or r.f("DPU_DATA_CUBE_HEIGHT", "MINMAX_CTL"):
        return H.ERR_READ
    co = r.f("DPU_DATA_CUBE_CHANNEL", "CHANNEL") + 1
    cc = min(r.f("DPU_DATA_CUBE_CHANNEL", "ORIG_CHANNEL") + 1, co)
    base = r["PC_TASK_DMA_BASE_ADDR"] & ~0xF
    try:
        bs = H.stage(r["DPU_BS_CFG"], H.s32(r["DPU_BS_ALU_CFG"]), H.s32(r["DPU_BS_RELUX_CMP_VALUE"]),
                     r["DPU_BS_MUL_CFG"], field("DPU_DATA_FORMAT", "BS_MUL_SHIFT_VALUE_NEG", fmt))
        bn = H.stage(r["DPU_BN_CFG"], H.s32(r["DPU_BN_ALU_CFG"]), H.s32(r["DPU_BN_RELUX_CMP_VALUE"]),
                     r["DPU_BN_MUL_CFG"], field("DPU_DATA_FORMAT", "BN_MUL_SHIFT_VALUE_NEG", fmt))
    except H.Refused:
        return H.ERR_READ
    if bn["on"] and bn["alu"] and bn["mem"]:
        return H.ERR_READ
    ew = r["DPU_EW_CFG"]
    ew_on, ew_op = not ew & 1, not ew & 1 and not ew & 2
    lut_on = ew_on and not ew >> 7 & 1
    if lut_on and (not fp16 or r["DPU_LUT_CFG"] >> 2 & 3 != 2 or r["DPU_LUT_CFG"] & 0x83 or
                   (r["DPU_LUT_INFO"] >> 8 & 0xFF) >= 32 or (r["DPU_LUT_INFO"] >> 16 & 0xFF) >= 32):
        return H.ERR_READ
    if ew_on and ew >> 20 & 1:                   # BINARY_EN; EQUAL_EN has no effect (Q17)
        return H.ERR_READ
    try:
        # main data: (c/C2)·(W·H·16 + SURF_NOTCH) + y·(W + LINE_NOTCH)·16 + x·16 + (c%C2)·e
        e_in = 2 if fp16 else OUT_BYTES[in_p]
        c2 = 16 // e_in
        surf = w * h * 16 + (r["DPU_RDMA_SURF_NOTCH"] & ~0xF)
        ln = r["DPU_RDMA_SRC_DMA_CFG"] >> 19 & 0x1FFF
        src = r["DPU_RDMA_SRC_BASE_ADDR"] + base
        v = np.zeros((h, w, cc), dtype=np.float64 if fp16 else np.int64)
        dt = "<f2" if fp16 else f"<i{e_in}"
        for j in range(-(-cc // c2)):
            for y in range(h):
                row = np.frombuffer(mem.read((src + j * surf + y * (w + ln) * 16) % (1 << 32),
                                             w * 16), dtype=np.uint8).reshape(w, 16)
                n = min(c2, cc - j * c2)
                v[y, :, j * c2:j * c2 + n] = row[:, :n * e_in].copy().view(dt).reshape(w, n)
        bias = None
        if bs["on"] and bs["alu"] and bs["mem"]:
            ent = r.f("DPU_DATA_CUBE_CHANNEL", "CHANNEL") + 1
            bias = np.frombuffer(mem.read((r["DPU_RDMA_BS_BASE_ADDR"] + base) % (1 << 32),
                                          4 * ent), dtype="<u4")[:cc]
        e = operand(r, mem, ew, w, h, cc, base) if ew_op and not lut_on else None
    except H.Fault:
        return H.ERR_READ
    q = float_pipe(r, v, bs, bn, ew, e, bias, lut["t"] if lut_on else None) if fp16 else \
        int_pipe(r, v, bs, bn, ew, e, bias)
    # WDMA: one atom per group, SURFACE_ADD per surface, OFFSET_PEND past ORIG_CHANNEL
    eo = OUT_BYTES[out_p]
    c2o = 16 // eo
    nsurf = -(-co // c2o)
    buf = np.zeros((h, w, nsurf * c2o, eo), dtype=np.uint8)
    if fp16:
        el = q.astype(np.float16) if out_p == 2 else q.astype(np.float32)
    else:
        lo, hi = {1: (-2**7, 2**7 - 1), 2: (-2**15, 2**15 - 1), 4: (-2**31, 2**31 - 1)}[eo]
        el = np.clip(q, lo, hi)
        el = el.astype(np.float32) if out_p == 5 else el.astype(f"<i{eo}")
    buf[:, :, :cc] = el.view(np.uint8).reshape(h, w, cc, eo)
    buf[:, :, cc:] = np.frombuffer((r["DPU_OFFSET_PEND"]).to_bytes(4, "little")[:eo],
                                   dtype=np.uint8)
    img = buf.reshape(h, w, nsurf, 16).transpose(2, 0, 1, 3)
    dst, add = r["DPU_DST_BASE_ADDR"] + base, r["DPU_SURFACE_ADD"] & ~0xF
    try:
        for j in range(nsurf):
            mem.write((dst + j * add) % (1 << 32), img[j].tobytes())
    except H.Fault:
        return H.ERR_WRITE
    return 0


def operand(r, mem, ew, w, h, cc, base):
    """The EW operand as raw values [h, w, cc] (Q17 addressing; registers: VALUE_[(c/8)%8])."""
    if not ew >> 6 & 1:
        return np.broadcast_to(np.array([r[f"DPU_EW_OP_VALUE_{(c // 8) % 8}"] for c in range(cc)],
                                        dtype=np.int64), (h, w, cc)).copy()
    size, mode = ew >> 22 & 3, ew >> 28 & 3
    er = r["DPU_RDMA_ERDMA_CFG"]
    if size == 0 or mode > 1 or er & 1 or (er >> 2 & 3) != size or (er >> 30 & 3) != mode:
        raise H.Fault
    eb = {1: 1, 2: 2, 3: 4}[size]
    c2, stride = 16 // eb, r["DPU_RDMA_EW_SURF_STRIDE"] & ~0xF
    out = np.zeros((h, w, cc), dtype=np.int64)
    for c in range(cc):
        a = r["DPU_RDMA_EW_BASE_ADDR"] + base + (c // c2) * stride
        if mode == 0:
            raw = mem.read((a + (c % c2) * eb) % (1 << 32), eb)
            out[:, :, c] = int.from_bytes(raw, "little", signed=True)
        else:
            px = np.frombuffer(mem.read(a % (1 << 32), w * h * 16), dtype=np.uint8)
            px = px.reshape(h, w, 16)[:, :, (c % c2) * eb:(c % c2 + 1) * eb].copy()
            out[:, :, c] = px.view(f"<i{eb}")[:, :, 0]
    return out


def int_pipe(r, v, bs, bn, ew, e, bias):
    """Integer procs: the Q7-Q10/Q17 stages on the main value (no truncation, no window sum)."""
    if bs["on"]:
        if bs["alu"]:
            op = bias.astype(np.int32).astype(np.int64) if bias is not None else bs["operand"]
            v = H.sat32(v - op if bs["sub"] else v + op)
        if bs["mul"]:
            v = H.mul(v, bs)
        v = H.activate(v, bs)
    if bn["on"]:
        if bn["mul"]:
            v = H.mul(v, bn)
        if bn["alu"]:
            v = v - bn["operand"] if bn["sub"] else v + bn["operand"]
        v = H.activate(v, bn)
    if not ew & 1:
        if not ew & 2:
            x = e
            if not ew >> 8 & 1:     # the operand converter (Q9)
                sc = r["DPU_EW_CVT_SCALE_VALUE"]
                off, scale, shift = H.s32(r["DPU_EW_CVT_OFFSET_VALUE"]), H.s16(sc), sc >> 16 & 0x3F
                half_up = bool(ew >> 30 & 1)
                x = H.rshift_round((x + off) * scale, shift, half_up) if ew >> 31 & 1 else \
                    H.rshift_round(x * scale, shift, half_up) + off
            if ew >> 2 & 1:
                v = v * (((x & 0xFFFF) ^ 0x8000) - 0x8000 if (ew >> 22 & 3) == 3 else x)
            else:
                v = {0: lambda: np.maximum(v, x), 1: lambda: np.minimum(v, x), 2: lambda: v + x,
                     4: lambda: v - x, 5: lambda: np.abs(v), 6: lambda: -v}[ew >> 16 & 0xF]()
        v = H.activate(v, {"relu": not ew >> 9 & 1, "relux": bool(ew >> 10 & 1),
                           "cmp": H.s32(r["DPU_EW_RELUX_CMP_VALUE"])})
    return H.out_cvt(H.sat32(v), r["DPU_OUT_CVT_SCALE"], r["DPU_OUT_CVT_SHIFT"],
                     r["DPU_OUT_CVT_OFFSET"])


def relu(v, s, cmp_bits):
    if s:
        v = np.maximum(v, np.float32(0))
        if cmp_bits is not None:
            v = np.minimum(v, f32(cmp_bits))
    return v


def float_pipe(r, v, bs, bn, ew, e, bias, lut):
    """fp16 procs in fp32: fp32-bit ALU operands, fp16-bit multipliers; LUT; float OUT_CVT."""
    v = v.astype(np.float32)
    if bs["on"]:
        if bs["alu"]:
            op = bias.view("<f4").astype(np.float32) if bias is not None else \
                f32(bs["operand"])
            v = v - op if bs["sub"] else v + op
        if bs["mul"]:
            v = v * f16(bs["c"])
        v = relu(v, bs["relu"], r["DPU_BS_RELUX_CMP_VALUE"] if bs["relux"] else None)
    if bn["on"]:
        if bn["mul"]:
            v = v * f16(bn["c"])
        if bn["alu"]:
            v = v - f32(bn["operand"]) if bn["sub"] else v + f32(bn["operand"])
        v = relu(v, bn["relu"], r["DPU_BN_RELUX_CMP_VALUE"] if bn["relux"] else None)
    if not ew & 1:
        if lut is not None:
            v = lut_eval(r, lut, v.astype(np.float64)).astype(np.float32)
        elif not ew & 2:
            regs, mulop, size = not ew >> 6 & 1, ew >> 2 & 1, ew >> 22 & 3
            as16 = (regs and mulop) or (not regs and size == 2)
            x = (e & 0xFFFF).astype("<u2").view("<f2").astype(np.float32) if as16 else \
                (e & 0xFFFFFFFF).astype("<u4").view("<f4").astype(np.float32)
            v = v * x if mulop else {0: lambda: np.maximum(v, x), 1: lambda: np.minimum(v, x),
                                     2: lambda: v + x, 4: lambda: v - x,
                                     5: lambda: np.abs(v), 6: lambda: -v}[ew >> 16 & 0xF]()
        v = relu(v, not ew >> 9 & 1, r["DPU_EW_RELUX_CMP_VALUE"] if ew >> 10 & 1 else None)
    sc, sh, off = r["DPU_OUT_CVT_SCALE"], r["DPU_OUT_CVT_SHIFT"], r["DPU_OUT_CVT_OFFSET"]
    scale, offset = np.float32(H.s16(sc)), np.float32(H.s32(off))
    if sh >> 31 & 1:
        v = np.ldexp((v + offset) * scale, -(sh >> 12 & 0xFF)).astype(np.float32)
    else:
        v = (np.ldexp(v * scale, -(sh & 0xFFF)) + offset).astype(np.float32)
    return v
