"""Independent Python reference of the NPU hardware model (qemu-hw/core/HARDWARE-UNKNOWNS.md and
mesa-rocket-spec §5), written from those documents in vectorised numpy, sharing no code with the C
core. It executes a job (memory segments + kicks) and returns the memory and status bits.

The hardware's failure modes of HARDWARE-UNKNOWNS.md Q15 ("quirks") are modelled as that page
describes them, by default the ones it switches on; `run_job(..., quirks=set())` is ideal hardware.
"""
import math

import numpy as np

from .regs import NAMES, REGS, RESETS, field

ERR_READ, ERR_WRITE = 1 << 12, 1 << 13

# Q15: the quirks' names (the order of the page's table) and the ones on by default.
QUIRKS = ("cbuf-data-overflow", "short-data-entries", "entry-slab-wrap", "fc-data-bank", "size-e",
          "mrdma-trap", "mac-gating", "dense-misaligned", "s-pointer-core-bits", "odd-kernels",
          "chain-int-acc", "flying-comb-use", "ppu-width-hang", "ppu-kernel16-pad7")
DEFAULT_QUIRKS = frozenset(QUIRKS) - {"s-pointer-core-bits"}


def quirk_set(spec=None):
    """A quirk selection: None (the defaults), a set of names, or a switch string as Q15 writes it:
    "on", "off", "all", or a comma list ("-size-e,+short-data-entries") applied to the defaults."""
    if spec is None:
        return DEFAULT_QUIRKS
    if not isinstance(spec, str):
        names = frozenset(spec)
        bad = names - set(QUIRKS)
        if bad:
            raise ValueError(f"unknown quirks {sorted(bad)}")
        return names
    if spec in ("on", "default", ""):
        return DEFAULT_QUIRKS
    if spec in ("off", "none"):
        return frozenset()
    if spec == "all":
        return frozenset(QUIRKS)
    on = set(DEFAULT_QUIRKS)
    for item in spec.split(","):
        name = item[1:] if item[:1] in "+-" else item
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r}")
        (on.discard if item[:1] == "-" else on.add)(name)
    return frozenset(on)


class QuirkLog:
    """One task's quirks: a trigger that holds applies its effect if the quirk is on (`fired`),
    else it is only noted (`off`)."""

    def __init__(self, on):
        self.on, self.fired, self.off = on, set(), set()

    def fire(self, name):
        if name in self.on:
            self.fired.add(name)
            return True
        self.off.add(name)
        return False


class Fault(Exception):
    pass


class Refused(Exception):
    """The model refuses the task (unimplemented or inconsistent): an error completion."""


class Memory:
    """NPU-visible memory: segments {iova: bytearray}; bytes outside all segments fault."""

    def __init__(self, segments):
        self.segs = sorted((iova, bytearray(data)) for iova, data in segments.items())

    def _spans(self, iova, n):
        out, a, end = [], iova, iova + n
        for base, buf in self.segs:
            if a >= end:
                break
            if base <= a < base + len(buf):
                k = min(end, base + len(buf)) - a
                out.append((buf, a - base, k))
                a += k
        if a < end or iova < 0 or end > 1 << 32:
            raise Fault(hex(iova))
        return out

    def read(self, iova, n):
        return b"".join(bytes(buf[o:o + k]) for buf, o, k in self._spans(iova, n))

    def write(self, iova, data):
        pos = 0
        for buf, o, k in self._spans(iova, len(data)):
            buf[o:o + k] = data[pos:pos + k]
            pos += k

    def get(self, iova):
        return dict((b, bytes(buf)) for b, buf in self.segs)[iova]


def rshift_round(x, sh, half_up=False):
    """round(x / 2^sh) on int64 arrays, ties to even (or up)."""
    x = np.asarray(x, dtype=object if np.max(np.abs(x), initial=0) >= 1 << 62 else np.int64)
    if sh == 0:
        return x
    if sh > 62:
        return x * 0
    q = x >> sh
    r = x - (q << sh)
    half = 1 << (sh - 1)
    up = (r > half) | ((r == half) & (True if half_up else (q & 1) == 1))
    return q + up


def s16(v):
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


def s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def sat32(a):
    return np.clip(a, -2**31, 2**31 - 1)


class Regs:
    def __init__(self):
        self.v = dict(RESETS)

    def __getitem__(self, name):
        return self.v.get(REGS[name], 0)

    def f(self, name, fld):
        return field(name, fld, self[name])


class Core:
    """One NPU core: register file and the PC task loop (Q1, Q2, Q14)."""

    def __init__(self, quirks=DEFAULT_QUIRKS, report=None):
        self.r = Regs()
        self.executer = {}   # block name -> 0/1
        self.quirks = quirks
        self.report = report  # None, or a list: one dict per task run
        self.lut = {"t": np.zeros((2, 513), dtype=np.int64), "table": 0, "addr": 0}

    def write_stream(self, e):
        target, value, off = e >> 48, (e >> 16) & 0xFFFFFFFF, e & 0xFFFF
        blocks = {8: 0x0000, 9: 0x1000, 11: 0x3000, 12: 0x4000, 13: 0x5000, 14: 0x6000,
                  15: 0x7000}
        wrote_base = False
        for bit, base in blocks.items():
            if not target >> bit & 1:
                continue
            a = base | (off & 0xFFF)
            if base == 0:
                if a in (0x10, 0x14):
                    self.r.v[a] = value
                    wrote_base |= a == 0x10
                continue
            if a not in NAMES or NAMES[a].endswith("S_STATUS"):
                continue
            if a in (0x4100, 0x4104):   # LUT_ACCESS_CFG / LUT_ACCESS_DATA (Q18)
                from . import hwflying
                hwflying.lut_write(self.lut, self.r.v, a, value)
            if (a & 0xFFF) == 4:   # S_POINTER
                if value & 0x20:
                    self.executer[a & 0xF000] = 0
                if value & 0x10:
                    value &= ~1
                value &= 0x3000000F
            self.r.v[a] = value
        return wrote_base

    def _report(self, task, ql, hang=False, error=0):
        if self.report is not None:
            self.report.append({"task": task, "quirks": [q for q in QUIRKS if q in ql.fired],
                                "quirks_off": [q for q in QUIRKS if q in ql.off],
                                "hang": hang, "error": error})

    def kick(self, mem, base, amount, task_con):
        """Run one kick; returns (raw status bits, hang, tasks)."""
        n = task_con & 0xFFF
        if n == 0:
            return ERR_READ | 0x100, False, 0
        done, tasks = 0x100, 0
        cacc = Cacc()                 # the integer accumulator clears per kick (Q15 chain-int-acc)
        for _ in range(n):
            try:
                raw = mem.read(base & ~0xF, (amount + 1) * 16)
            except Fault:
                return ERR_READ | 0x100, False, tasks
            entries = np.frombuffer(raw, dtype="<u8")
            wrote_base, opn = False, None
            for e in map(int, entries):
                if e == 0:
                    continue
                t = e >> 48
                if not t & 1:
                    continue
                if t & 0x80:
                    opn = (e >> 16) & 0xFFFFFFFF
                    break
                if t & 0x40 or not t & 0xFF00:
                    continue
                wrote_base |= self.write_stream(e)
            tasks += 1
            ql = QuirkLog(self.quirks)
            ql.task_index, ql.cacc, ql.lut = tasks - 1, cacc, self.lut
            if opn is None:
                self._report(tasks - 1, ql, error=ERR_READ)
                return ERR_READ | 0x100, False, tasks
            dpu_exec = self.executer.get(0x4000, 0)
            done = (0x100 << dpu_exec) if opn & 8 else (0x400 << self.executer.get(0x6000, 0)) \
                if opn & 0x20 else 0x100
            try:
                err = run_task(self.r, mem, opn, ql)
            except Hang:
                self._report(tasks - 1, ql, hang=True)
                return 0, True, tasks
            self._report(tasks - 1, ql, error=err)
            if err:
                return err | done, False, tasks
            for blk in (0x1000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000):
                if self.r.v.get(blk | 4, 0) & 4:
                    self.executer[blk] = self.executer.get(blk, 0) ^ 1
            if not wrote_base:
                break
            base, amount = self.r.v[0x10], self.r.v[0x14] & 0xFFFF
        return done, False, tasks


class Hang(Exception):
    pass


class Cacc:
    """What the raw accumulator holds after a task: [pixel, channel % 32] (None: cleared)."""

    def __init__(self):
        self.prev = self.next = None


def run_task(r, mem, opn, ql=None):
    """Execute one task's op_en; returns error bits (0 if clean), raises Hang."""
    if opn & (PPU_BITS | PPU_RDMA_BITS):
        return run_pool(r, mem, opn, ql or QuirkLog(DEFAULT_QUIRKS))
    if opn & 8 and not opn & 5:                    # DPU-only (Q18)
        from . import hwflying
        ql = ql or QuirkLog(DEFAULT_QUIRKS)
        return hwflying.run(r, mem, opn, getattr(ql, "lut", None) or
                            {"t": np.zeros((2, 513), dtype=np.int64)}, ql)
    if opn & 0xD != 0xD:
        return ERR_READ
    try:
        t = decode(r, opn)
    except Refused:
        return ERR_READ
    ql = ql or QuirkLog(DEFAULT_QUIRKS)
    apply_quirks(r, t, ql)
    cacc = getattr(ql, "cacc", None)
    if cacc is not None:
        cacc.prev, cacc.next = (cacc.prev if t.raw_acc else None), None
    try:
        out = compute(t, mem)
    except Fault:
        return ERR_READ
    try:
        write_output(t, mem, out)
    except Fault:
        return ERR_WRITE
    if cacc is not None:
        cacc.prev = cacc.next
    return 0


class Task:
    pass


# Q19: CNA/CORE precision code -> (element bits, float, weight N-group, K-group, depthwise group
# or None, the DPU IN/PROC code)
PRECS = {0: (8, False, 32, 32, 64, 0), 1: (16, False, 16, 32, None, 1),
         2: (16, True, 16, 32, 32, 2), 3: (16, True, 16, 32, None, 3),
         6: (4, False, 64, 32, None, 6), 7: (32, True, 16, 16, None, 5)}


def decode(r, opn):
    """Registers -> a Task (refusals as in task.c's rules, from HARDWARE-UNKNOWNS)."""
    t = Task()
    t.r = r
    con1, mode = r["CNA_CONV_CON1"], r.f("CNA_CONV_CON1", "CONV_MODE")
    argb = r.f("CNA_CONV_CON1", "ARGB_IN")
    t.prec = r.f("CNA_CONV_CON1", "IN_PRECISION")
    if mode not in (0, 3) or t.prec not in PRECS or \
            r.f("CNA_CONV_CON1", "PROC_PRECISION") != t.prec or \
            r.f("CORE_MISC_CFG", "PROC_PRECISION") != t.prec:
        raise Refused
    t.bits, t.fp, t.ng, t.kg, t.dwg, t.dpu = PRECS[t.prec]
    if r.f("CNA_CONV_CON1", "DECONV") or r.f("CNA_CONV_CON3", "NN_MODE") or \
            r.f("CNA_CONV_CON3", "ATROUS_X_DILATION") or r.f("CNA_CONV_CON3", "ATROUS_Y_DILATION"):
        raise Refused
    if r.f("CNA_FC_CON0", "FC_SKIP_EN") or r.f("CNA_DCOMP_CTRL", "DECOMP_CONTROL"):
        raise Refused
    if argb and not 8 <= argb <= 11:        # QD_EN: no effect on the int8 pipeline (Q10)
        raise Refused
    t.dw = mode == 3
    t.raw_acc = not r.f("CORE_MISC_CFG", "QD_EN")
    if bool(r.f("CORE_MISC_CFG", "DW_EN")) != t.dw:
        raise Refused
    if t.prec and ((t.dw and not t.dwg) or argb or (t.fp and not r["CNA_CVT_CON0"] & 1)):
        raise Refused                       # Q19: depthwise int8/fp16, dense int8, no float cvt
    if t.raw_acc and t.prec not in (0, 6):  # QD_EN 0: int8 and int4 only
        raise Refused
    t.wi, t.hi = r.f("CNA_DATA_SIZE0", "DATAIN_WIDTH"), r.f("CNA_DATA_SIZE0", "DATAIN_HEIGHT")
    t.ci = r.f("CNA_DATA_SIZE1", "DATAIN_CHANNEL")
    t.kw, t.kh = r.f("CNA_WEIGHT_SIZE2", "WEIGHT_WIDTH"), r.f("CNA_WEIGHT_SIZE2", "WEIGHT_HEIGHT")
    t.k = 1 if t.dw else r.f("CNA_WEIGHT_SIZE2", "WEIGHT_KERNELS")
    t.sx, t.sy = r.f("CNA_CONV_CON3", "CONV_X_STRIDE"), r.f("CNA_CONV_CON3", "CONV_Y_STRIDE")
    t.pt, t.pl = r.f("CNA_PAD_CON0", "PAD_TOP"), r.f("CNA_PAD_CON0", "PAD_LEFT")
    if 0 in (t.wi, t.hi, t.ci, t.kw, t.kh, t.k, t.sx, t.sy):
        raise Refused
    t.dma_base = r["PC_TASK_DMA_BASE_ADDR"] & ~0xF
    t.feat = r["CNA_FEATURE_DATA_ADDR"]
    ls, ss = r["CNA_DMA_CON1"] & 0x0FFFFFFF, r["CNA_DMA_CON2"] & 0x0FFFFFFF
    ss = ss - (1 << 28) if ss & (1 << 27) else ss
    t.argb = argb - 7 if argb else 0
    t.row, t.surf = (ls * t.argb, 0) if t.argb else (4 * ls, 16 * (ls + ss))
    if not t.argb and con1 >> 29 & 1:       # Q19 row-major feature: W = 1, SURF_STRIDE 0 only
        if t.wi != 1 or r["CNA_DMA_CON2"] & 0x0FFFFFFF:
            raise Refused
        t.row, t.surf = 16 * ls, 16
    t.cbytes = -(-t.ci * t.bits // 8)
    cvt0 = r["CNA_CVT_CON0"]
    t.cvt = not cvt0 & 1
    t.cvt_signed, t.cvt_add_first, t.cvt_half_up = bool(cvt0 & 8), bool(cvt0 & 2), bool(cvt0 & 4)
    t.cvt_en = r["CNA_CVT_CON5"]
    t.lanes = []
    for n in range(4):
        p = r[f"CNA_CVT_CON{n + 1}"]
        t.lanes.append((s16(p >> 16), s16(p), (cvt0 >> (4 + 6 * n)) & 0x3F))
    t.pad = r["CNA_PAD_CON1"]
    t.wt = r["CNA_DCOMP_ADDR0"]
    t.trunc, t.trunc_up = r.f("CORE_CLIP_TRUNCATE", "CLIP_TRUNCATE"), \
        bool(r.f("CORE_CLIP_TRUNCATE", "ROUND_TYPE"))
    # DPU
    fm, fmt = r["DPU_FEATURE_MODE_CFG"], r["DPU_DATA_FORMAT"]
    if field("DPU_FEATURE_MODE_CFG", "FLYING_MODE", fm) or \
            field("DPU_FEATURE_MODE_CFG", "TP_EN", fm) or \
            field("DPU_FEATURE_MODE_CFG", "NONALIGN", fm) or \
            field("DPU_FEATURE_MODE_CFG", "OUTPUT_MODE", fm) != 2:
        raise Refused
    t.out_prec = field("DPU_DATA_FORMAT", "OUT_PRECISION", fmt)
    half = r.f("DPU_OUT_CVT_SCALE", "FP32TOFP16_EN")
    if t.fp:                                 # Q19: fp32, or fp16 through FP32TOFP16_EN
        t.out_bytes = {(5, 0): 4, (2, 1): 2}.get((t.out_prec, half), 0)
    else:
        t.out_bytes = 0 if half else OUT_BYTES.get(t.out_prec, 0)
    if not t.out_bytes or field("DPU_DATA_FORMAT", "IN_PRECISION", fmt) != t.dpu or \
            field("DPU_DATA_FORMAT", "PROC_PRECISION", fmt) != t.dpu or \
            field("DPU_DATA_FORMAT", "MC_SURF_OUT", fmt) or \
            r.f("DPU_DATA_CUBE_HEIGHT", "MINMAX_CTL"):
        raise Refused
    t.wo, t.ho = r.f("DPU_DATA_CUBE_WIDTH", "WIDTH") + 1, r.f("DPU_DATA_CUBE_HEIGHT", "HEIGHT") + 1
    if (t.wo, t.ho) != (r.f("CORE_DATAOUT_SIZE_0", "DATAOUT_WIDTH") + 1,
                        r.f("CORE_DATAOUT_SIZE_0", "DATAOUT_HEIGHT") + 1):
        raise Refused
    t.co = r.f("DPU_DATA_CUBE_CHANNEL", "CHANNEL") + 1
    t.co_calc = min(r.f("DPU_DATA_CUBE_CHANNEL", "ORIG_CHANNEL") + 1, t.co)
    t.bs = stage(r["DPU_BS_CFG"], s32(r["DPU_BS_ALU_CFG"]), s32(r["DPU_BS_RELUX_CMP_VALUE"]),
                 r["DPU_BS_MUL_CFG"], field("DPU_DATA_FORMAT", "BS_MUL_SHIFT_VALUE_NEG", fmt))
    t.bn = stage(r["DPU_BN_CFG"], s32(r["DPU_BN_ALU_CFG"]), s32(r["DPU_BN_RELUX_CMP_VALUE"]),
                 r["DPU_BN_MUL_CFG"], field("DPU_DATA_FORMAT", "BN_MUL_SHIFT_VALUE_NEG", fmt))
    if t.bn["on"] and t.bn["alu"] and t.bn["mem"]:
        raise Refused
    t.cpend = t.bs["on"] and not r.f("DPU_BS_OW_CFG", "OD_BYPASS")
    if t.cpend and (r.f("DPU_BS_OW_CFG", "OW_SRC") or t.fp):
        raise Refused
    t.ow_op = s16(r["DPU_BS_OW_OP"])
    t.bias = r["DPU_RDMA_BS_BASE_ADDR"]
    if t.bs["on"] and t.bs["alu"] and t.bs["mem"] and not opn & 0x10:
        raise Refused
    ew = r["DPU_EW_CFG"]
    t.ew_on = not ew & 1
    t.ew_op = t.ew_on and not ew & 2
    if t.ew_on:
        if not field("DPU_EW_CFG", "EW_LUT_BYPASS", ew) or field("DPU_EW_CFG", "EW_BINARY_EN", ew):
            raise Refused                        # EQUAL_EN: no effect (Q17)
        t.ew_relu = not field("DPU_EW_CFG", "EW_RELU_BYPASS", ew)
        t.ew_relux = bool(field("DPU_EW_CFG", "EW_RELUX_EN", ew))
        t.ew_cmp = s32(r["DPU_EW_RELUX_CMP_VALUE"])
    if t.ew_op:
        algo, sc = field("DPU_EW_CFG", "EW_ALU_ALGO", ew), r["DPU_EW_CVT_SCALE_VALUE"]
        size, mode = field("DPU_EW_CFG", "EDATA_SIZE", ew), field("DPU_EW_CFG", "EW_DATA_MODE", ew)
        t.ew_mul = bool(field("DPU_EW_CFG", "EW_OP_TYPE", ew))
        t.ew_regs = not field("DPU_EW_CFG", "EW_OP_SRC", ew)
        t.ew_bytes = {1: 1, 2: 2, 3: 4}.get(size, 0)
        t.ew_mode = mode
        if (not t.ew_regs and (not t.ew_bytes or mode > 1)) or \
                field("DPU_EW_CFG", "EW_MUL_PRELU", ew) or \
                (not t.ew_mul and algo not in (0, 1, 2, 4, 5, 6)) or \
                field("DPU_EW_CVT_SCALE_VALUE", "EW_TRUNCATE", sc) or \
                field("DPU_DATA_FORMAT", "EW_TRUNCATE_NEG", fmt):
            raise Refused
        t.ew_values = [s32(r[f"DPU_EW_OP_VALUE_{n}"]) for n in range(8)]
        t.ew_algo = algo
        t.ew_cvt = not field("DPU_EW_CFG", "EW_OP_CVT_BYPASS", ew)
        t.ew_add_first = bool(field("DPU_EW_CFG", "EW_CVT_TYPE", ew))
        t.ew_half_up = bool(field("DPU_EW_CFG", "EW_CVT_ROUND", ew))
        t.ew_offset = s32(r["DPU_EW_CVT_OFFSET_VALUE"])
        t.ew_scale = s16(sc)
        t.ew_shift = field("DPU_EW_CVT_SCALE_VALUE", "EW_OP_CVT_SHIFT", sc)
    if t.fp and t.ew_op and not t.ew_regs and t.ew_bytes == 1:
        raise Refused                         # an 8-bit operand on float data
    t.out = (r["DPU_OUT_CVT_SCALE"], r["DPU_OUT_CVT_SHIFT"], r["DPU_OUT_CVT_OFFSET"])
    t.dst = r["DPU_DST_BASE_ADDR"]
    t.dst_stride = r["DPU_DST_SURF_STRIDE"] & ~0xF
    t.surf_add = r["DPU_SURFACE_ADD"] & ~0xF
    t.group = t.dwg if t.dw else t.ng         # Q11/Q19: the precision's kernel group
    t.onotch = r.f("DPU_DATA_CUBE_NOTCH_ADDR", "NOTCH_ADDR_0")
    t.pend = r["DPU_OFFSET_PEND"]
    # DPU_RDMA
    rfm, er = r["DPU_RDMA_FEATURE_MODE_CFG"], r["DPU_RDMA_ERDMA_CFG"]
    comb = field("DPU_RDMA_FEATURE_MODE_CFG", "COMB_USE", rfm)
    wide = t.ew_op and (t.ew_regs or t.ew_bytes != 1 or t.ew_mode == 0)
    if not opn & 0x10:
        if t.ew_op and not t.ew_regs:
            raise Refused
    else:
        if r.f("DPU_RDMA_BRDMA_CFG", "BRDMA_DATA_USE") & ~1 or \
                r.f("DPU_RDMA_NRDMA_CFG", "NRDMA_DATA_USE"):
            raise Refused
        if t.ew_op and not t.ew_regs:
            if field("DPU_RDMA_ERDMA_CFG", "ERDMA_DISABLE", er):
                raise Refused
            if field("DPU_RDMA_ERDMA_CFG", "ERDMA_DATA_SIZE", er) != \
                    field("DPU_EW_CFG", "EDATA_SIZE", ew) or \
                    field("DPU_RDMA_ERDMA_CFG", "ERDMA_DATA_MODE", er) != t.ew_mode:
                raise Refused
            if (r.f("DPU_RDMA_DATA_CUBE_WIDTH", "WIDTH") + 1,
                    r.f("DPU_RDMA_DATA_CUBE_HEIGHT", "HEIGHT") + 1) != (t.wo, t.ho):
                raise Refused
            t.two = bool(comb & 1)
            if t.two and (t.ew_mode == 0 or (t.prec == 0 and wide)):
                raise Refused
            t.ew_src, t.ew_base = r["DPU_RDMA_SRC_BASE_ADDR"], r["DPU_RDMA_EW_BASE_ADDR"]
            t.notch = (r["DPU_RDMA_SURF_NOTCH"] & ~0xF, r["DPU_RDMA_EW_SURF_NOTCH"] & ~0xF)
            t.ew_stride = r["DPU_RDMA_EW_SURF_STRIDE"] & ~0xF
    c16 = -(-t.cbytes // 16) * 16
    hp, wp = (t.ho - 1) * t.sy + t.kh, (t.wo - 1) * t.sx + t.kw
    taps = t.kh * t.kw
    macs = t.wo * t.ho * t.co_calc * taps * (1 if t.dw else t.ci)
    lim = 64 << 20
    el, elim = (1, lim) if t.prec == 0 else (8, 2 * lim)
    if c16 * t.wi * t.hi > lim or hp * wp * t.ci * el > elim or \
            -(-t.k * taps * t.ci * t.bits // 8) > lim or \
            (t.prec and t.k * taps * t.ci * el > elim) or \
            -(-t.co // 16) * 16 * t.wo * t.ho > lim or t.wo * taps * t.ci > lim or \
            macs > 1 << 33 or (not t.dw and taps * t.ci > 1 << 16):
        raise Refused
    return t


# ---- Q15: the quirks ----

class CbufGeom:
    """Q15 "CBUF geometry" of a surface-mode int8 feature W x H x C: 64-byte units, rows stored
    slab-major (slab s = channels 64s..64s+63; pixel x of a whole slab at unit s*W + x; a last
    partial slab of 3 atoms one unit per pixel, of 2 / 1 atoms 2 / 4 pixels per unit)."""

    def __init__(self, w, h, c, banks):
        self.w, self.h, self.c = w, h, c
        self.a = -(-c // 16)
        self.nfull, self.part = self.a // 4, self.a % 4
        self.e64 = self.nfull * w + (w if self.part == 3 else -(-w * self.part // 4))
        self.cap = banks * 512
        self.slabs = -(-self.a // 4)
        # the partial slab: pixels per unit and bytes per pixel in a unit
        self.ppu = {1: 4, 2: 2}.get(self.part, 1)
        self.bpp = 64 // self.ppu

    def unit(self, x, c):
        """(in-row unit, byte in the unit, base unit of the slab) of channel c of pixel x."""
        s, b = c // 64, c % 64
        whole = s < self.nfull
        pbase = self.nfull * self.w
        u = np.where(whole, s * self.w + x, pbase + x // self.ppu)
        byte = np.where(whole, b, (x % self.ppu) * self.bpp + b)
        base = np.where(whole, s * self.w, pbase)
        return u, byte, base

    def element(self, off, byte):
        """Inverse of unit(): (pixel, channel, valid) stored at byte `byte` of in-row unit off."""
        pbase = self.nfull * self.w
        whole = off < pbase
        x = np.where(whole, off % self.w, (off - pbase) * self.ppu + byte // self.bpp)
        c = np.where(whole, off // self.w * 64 + byte, self.nfull * 64 + byte % self.bpp)
        return x, c, (off >= 0) & (off < self.e64) & (x < self.w) & (c < self.c)


def cbuf_gather(img, g, pitch, wrap, shift):
    """The feature as the CNA reads it from the CBUF: img [H, W, C] (values as stored, after the
    input converter) was stored row after row, row y from unit y*pitch on, units >= CAP dropped;
    element (y, x, c) reads unit ((y*pitch + its in-row unit [slab base & 0x7FF when wrap]) mod CAP)
    + shift, i.e. what the last row stored over that unit left there (never stored, or past CAP
    after the FC_DATA_BANK shift: int8 0)."""
    H, W, C = img.shape
    if g.cap == 0:
        return np.zeros_like(img)
    u, byte, base = g.unit(np.arange(W)[:, None], np.arange(C)[None, :])
    if wrap:
        u = (base & 0x7FF) + (u - base)
    ua = (u[None, :, :] + np.arange(H)[:, None, None] * pitch) % g.cap + shift
    inside = ua < g.cap                  # FC_DATA_BANK past the feature's banks: no data
    ua = np.where(inside, ua, 0)
    r = np.minimum(ua // pitch, H - 1) if pitch else np.full_like(ua, H - 1)
    off = ua - r * pitch
    sx, sc, ok = g.element(off, np.broadcast_to(byte, ua.shape))
    ok &= inside
    vals = img[r, np.where(ok, sx, 0), np.where(ok, sc, 0)]
    return np.where(ok, vals, 0)


def apply_quirks(r, t, q):
    """Q15 triggers of a decoded conv task, in the order: hangs (nothing computed or written),
    then the effects on the data path, recorded in t; q is the task's QuirkLog."""
    rfm, gate = r["DPU_RDMA_FEATURE_MODE_CFG"], r["CORE_MAC_GATING"]
    if not field("DPU_RDMA_FEATURE_MODE_CFG", "MRDMA_DISABLE", rfm) and \
            not field("DPU_RDMA_FEATURE_MODE_CFG", "COMB_USE", rfm) & 4 and q.fire("mrdma-trap"):
        raise Hang
    if not gate >> 24 & 1 and q.fire("mac-gating"):
        raise Hang
    t.lane_zero = 0
    if (not gate >> 11 & 1 or not gate >> 23 & 1) and q.fire("mac-gating"):
        t.lane_zero = (0 if gate >> 11 & 1 else 0x00FF) | (0 if gate >> 23 & 1 else 0xFF00)
    t.fetch_base = (t.feat + t.dma_base) % (1 << 32)
    if t.argb and t.fetch_base % 16 and q.fire("dense-misaligned"):
        t.fetch_base &= ~0xF
    if not t.dw and t.k % 2 and t.prec == 0:
        q.fire("odd-kernels")            # log only
    cacc = getattr(q, "cacc", None)
    t.cacc_chain = t.raw_acc and getattr(q, "task_index", 0) > 0 and cacc is not None and \
        cacc.prev is not None and q.fire("chain-int-acc")
    t.cacc = cacc if t.raw_acc else None
    t.cbuf = None
    if not t.argb:
        con0 = r["CNA_CBUF_CON0"]
        # Q19: the other precisions' pixels as ceil(C·bits/8) bytes, each taken as an int8 channel
        g = CbufGeom(t.wi, t.hi, t.cbytes, field("CNA_CBUF_CON0", "DATA_BANK", con0))
        fc = field("CNA_CBUF_CON0", "FC_DATA_BANK", con0)
        entries = r.f("CNA_CBUF_CON1", "DATA_ENTRIES")
        pitch, remap, wrap, shift = g.e64, False, False, 0
        if entries < g.e64 and q.fire("short-data-entries"):
            pitch, remap = entries, True
        if (g.h - 1) * pitch + g.e64 > g.cap and q.fire("cbuf-data-overflow"):
            remap = True
        if (g.slabs - 1) * g.w >= 2048 and q.fire("entry-slab-wrap"):
            wrap = remap = True
        if fc and not t.dw and q.fire("fc-data-bank"):
            shift, remap = fc * 512, True
        if remap:
            t.cbuf = (g, pitch, wrap, shift)
    # size-e: the writer's line against E* = G/16 - 1 (int8 output)
    ow, want = r["DPU_BS_OW_CFG"], t.group * t.out_bytes // 16 - 1
    t.surf_written, t.size_e_hang = t.group * t.out_bytes // 16, False
    bad = [field("DPU_BS_OW_CFG", f"SIZE_E_{n}", ow) for n in range(3)]
    bad = [e for e in bad if e != want]
    if bad and q.fire("size-e"):
        if not field("DPU_BS_OW_CFG", "OD_BYPASS", ow) or bad[0] > want:
            t.size_e_hang = True
        else:
            t.surf_written = bad[0] + 1


def stage(cfg, operand, cmp, mul_cfg=0, shift_neg=0):
    """BS_CFG / BN_CFG (and BS_MUL_CFG / BN_MUL_CFG) share a layout (Q9, Q17)."""
    bit = lambda n: (cfg >> n) & 1
    mul = not bit(0) and not bit(4)
    if mul and (mul_cfg & 3 or bit(5)):
        raise Refused                        # multiplier from memory, TRUNCATE_SRC, PReLU
    algo = (cfg >> 16) & 0xF
    if not bit(0) and not bit(1) and algo not in (2, 4):
        raise Refused
    return {"on": not bit(0), "alu": not bit(1), "mem": bool(bit(8)), "sub": algo == 4,
            "operand": operand, "relu": not bit(6), "relux": bool(bit(7)), "cmp": cmp,
            "mul": mul, "c": s16(mul_cfg >> 16), "shift": (mul_cfg >> 8) & 0x3F,
            "shift_neg": shift_neg}


def mul(v, s):
    """Q17: v * C, shifted by the shift of the product's sign, ties to even, int32."""
    p = v * s["c"]
    return sat32(np.where(p >= 0, rshift_round(p, s["shift"]), rshift_round(p, s["shift_neg"])))


def cvt_byte(t, raw, ch):
    """Q6: the CNA input converter on bytes `raw` (int64 array) of channel ch."""
    if not t.cvt or not (t.cvt_en >> (ch % 16)) & 1:
        return np.where(raw >= 128, raw - 256, raw)
    x = np.where(raw >= 128, raw - 256, raw) if t.cvt_signed else raw
    scale, offset, trunc = t.lanes[ch % 4]
    if t.cvt_add_first:
        y = rshift_round((x + offset) * scale, trunc, t.cvt_half_up)
    else:
        y = rshift_round(x * scale, trunc, t.cvt_half_up) + offset
    return np.clip(y, -128, 127)


def fetch_input(t, mem):
    """The padded input tile X[hp, wp, ci] (int64) as the CNA sees it (Q4, Q6, Q13)."""
    hp, wp = (t.ho - 1) * t.sy + t.kh, (t.wo - 1) * t.sx + t.kw
    pad = np.array([pad_byte(t, c) for c in range(t.ci)], dtype=np.int64)
    X = np.broadcast_to(pad, (hp, wp, t.ci)).copy()
    raw = np.zeros((t.hi, t.wi, t.ci), dtype=np.int64)
    base = getattr(t, "fetch_base", t.feat + t.dma_base)
    for y in range(t.hi):
        if t.argb:
            row = np.frombuffer(mem.read((base + y * t.row) % (1 << 32), t.wi * t.argb),
                                dtype=np.uint8).reshape(t.wi, t.argb)
            raw[y, :, :min(t.argb, t.ci)] = row[:, :t.ci]
        else:
            for s in range(-(-t.ci // 16)):
                a = (base + s * t.surf + y * t.row) % (1 << 32)
                row = np.frombuffer(mem.read(a, t.wi * 16), dtype=np.uint8).reshape(t.wi, 16)
                n = min(16, t.ci - 16 * s)
                raw[y, :, 16 * s:16 * s + n] = row[:, :n]
    conv = np.stack([cvt_byte(t, raw[:, :, c], c) for c in range(t.ci)], axis=2)
    if getattr(t, "cbuf", None):
        conv = cbuf_gather(conv, *t.cbuf)
    h, w = min(t.hi, max(hp - t.pt, 0)), min(t.wi, max(wp - t.pl, 0))
    X[t.pt:t.pt + h, t.pl:t.pl + w, :] = conv[:h, :w, :]
    return X


def pad_byte(t, c):
    """Q13."""
    b = (t.pad >> 8) & 0xFF if t.dw and c % 64 < 32 and c % 2 else t.pad & 0xFF
    return b - 256 if b >= 128 else b


def weight_index(t):
    """Q5: byte offsets of W[o][ky][kx][c] (conv) or W[ky][kx][c] (depthwise) in the stream."""
    c = np.arange(t.ci)
    tap = np.arange(t.kh * t.kw).reshape(t.kh, t.kw)
    if t.dw:
        gw = np.minimum(64, t.ci - 64 * (c // 64))
        return (c // 64) * t.kh * t.kw * 64 + tap[:, :, None] * gw + c % 64
    o = np.arange(min(t.k, t.co_calc))[:, None, None, None]
    gw = np.minimum(32, t.ci - 32 * (c // 32))
    nk = np.minimum(32, t.k - 32 * (o // 32))
    return (o // 32) * 32 * t.kh * t.kw * t.ci + (c // 32) * t.kh * t.kw * nk * 32 + \
        tap[None, :, :, None] * nk * gw + (o % 32) * gw + c % 32


def compute(t, mem):
    """MAC sums and DPU post-processing; returns the output [ho, wo, co_calc] before the output
    type: integers (int8, int4, int16 procs) or float32 (fp16, bf16, tf32, Q19)."""
    if t.prec:
        return compute_wide(t, mem)
    X = fetch_input(t, mem)
    size = t.kh * t.kw * t.ci * t.k
    wbytes = np.frombuffer(mem.read((t.wt + t.dma_base) % (1 << 32), size), dtype=np.int8)
    W = wbytes.astype(np.int64)[weight_index(t)]
    ys, xs = np.arange(t.ho) * t.sy, np.arange(t.wo) * t.sx
    # windows[ho, wo, kh, kw, ci]
    win = np.stack([np.stack([X[ys[:, None] + ky, xs[None, :] + kx, :] for kx in range(t.kw)],
                             axis=2) for ky in range(t.kh)], axis=2)
    if t.dw:
        cc = min(t.ci, t.co_calc)
        acc = np.zeros((t.ho, t.wo, t.co_calc), dtype=np.int64)
        S = np.zeros_like(acc)
        acc[:, :, :cc] = np.einsum("hwyxc,yxc->hwc", win, W)[:, :, :cc]
        S[:, :, :cc] = win.sum(axis=(2, 3))[:, :, :cc]
    else:
        flat = win.reshape(t.ho, t.wo, -1)
        acc = np.zeros((t.ho, t.wo, t.co_calc), dtype=np.int64)
        nk = W.shape[0]
        acc[:, :, :nk] = flat @ W.reshape(nk, -1).T
        S = np.broadcast_to(flat.sum(axis=2)[:, :, None], acc.shape)
    cacc_pass(t, acc)
    return dpu_int(t, mem, acc, S)


def cacc_pass(t, acc):
    """Quirk chain-int-acc (Q15): add the previous task's residue; record this task's."""
    if t.cacc is not None:                # the raw accumulator: what the next task may find
        px = acc.reshape(-1, t.co_calc)
        lane = np.arange(t.co_calc) % 32
        if t.cacc_chain:
            n = min(len(t.cacc.prev), len(px))
            px[:n] = sat32(px[:n] + t.cacc.prev[:n][:, lane])
        nxt = np.zeros((len(px), 32), dtype=np.int64)
        for o in range(t.co_calc):        # a later channel of the same lane overwrites
            nxt[:, o % 32] = px[:, o]
        t.cacc.next = nxt


def dpu_int(t, mem, acc, S):
    """The integer DPU stages (Q7-Q10, Q17) on the MAC sums acc and window sums S."""
    bias = np.zeros(t.co_calc, dtype=np.int64)
    if t.bs["on"] and t.bs["alu"]:
        if t.bs["mem"]:
            ent = t.co
            b = np.frombuffer(mem.read((t.bias + t.dma_base) % (1 << 32), 4 * ent), dtype="<i4")
            bias = b[:t.co_calc].astype(np.int64)
        else:
            bias[:] = t.bs["operand"]
    e = None
    if t.ew_op:
        e = fetch_ew_wide(t, mem) if t.ew_regs or t.ew_bytes != 1 or t.ew_mode == 0 else \
            fetch_ew(t, mem)
    v = acc + t.ow_op * S if t.bs["on"] and t.cpend else acc
    v = rshift_round(v, t.trunc, t.trunc_up)          # Q7: truncate after CPEND, before bias
    if t.bs["on"]:                                     # BS: ALU, then MUL (Q17)
        if t.bs["alu"]:
            v = sat32(v - bias if t.bs["sub"] else v + bias)
        if t.bs["mul"]:
            v = mul(v, t.bs)
        v = activate(v, t.bs)
    if t.bn["on"]:                                     # BN: MUL, then ALU
        if t.bn["mul"]:
            v = mul(v, t.bn)
        if t.bn["alu"]:
            v = v - t.bn["operand"] if t.bn["sub"] else v + t.bn["operand"]
        v = activate(v, t.bn)
    if t.ew_on:
        if t.ew_op:
            x = e[:, :, :t.co_calc]
            if t.ew_cvt:
                if t.ew_add_first:
                    x = rshift_round((x + t.ew_offset) * t.ew_scale, t.ew_shift, t.ew_half_up)
                else:
                    x = rshift_round(x * t.ew_scale, t.ew_shift, t.ew_half_up) + t.ew_offset
            if t.ew_mul:                                # 32-bit data: low 16 bits, signed
                v = v * ((((x & 0xFFFF) ^ 0x8000) - 0x8000) if t.ew_bytes == 4 else x)
            else:
                v = {0: lambda: np.maximum(v, x), 1: lambda: np.minimum(v, x),
                     2: lambda: v + x, 4: lambda: v - x, 5: lambda: np.abs(v),
                     6: lambda: -v}[t.ew_algo]()
        v = activate(v, {"relu": t.ew_relu, "relux": t.ew_relux, "cmp": t.ew_cmp})
    return out_cvt(sat32(v), *t.out)             # [ho, wo, co_calc], before the output type


# ---- Q19: the CNA/CORE precisions other than int8 ----

def unpack_elems(raw, bits, n):
    """The first n `bits`-bit little-endian elements of each row of raw (uint8 [..., bytes]),
    unsigned (int4: element 2i in the low nibble of byte i)."""
    raw = np.asarray(raw, dtype=np.uint8)
    if bits == 4:
        nib = np.stack([raw & 0xF, raw >> 4], axis=-1).reshape(raw.shape[:-1] + (-1,))
        return nib[..., :n].astype(np.int64)
    b = bits // 8
    u = raw[..., :n * b].reshape(raw.shape[:-1] + (n, b)).astype(np.int64)
    return sum(u[..., i] << (8 * i) for i in range(b))


def signed(u, bits):
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u)


def float_values(u, prec):
    """Raw float elements -> float64 values the MAC multiplies: fp16, bf16, or tf32 (an fp32
    whose significand is rounded to 11 bits, to nearest even, by the MAC)."""
    u = np.asarray(u, dtype=np.int64)
    if prec == 2:
        return (u & 0xFFFF).astype(np.uint16).view(np.float16).astype(np.float64)
    if prec == 3:
        return ((u & 0xFFFF) << 16).astype(np.uint32).view(np.float32).astype(np.float64)
    x = (u & 0xFFFFFFFF).astype(np.uint32).view(np.float32).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        m, e = np.frexp(x)                      # |m| in [0.5, 1): 11 bits are m·2^11 rounded
        normal = np.ldexp(np.round(m * 2.0 ** 11), e - 11)
        tiny = np.round(x * 2.0 ** 136) / 2.0 ** 136   # fp32 subnormals: a 2^-136 quantum
        y = np.where(np.abs(x) < 2.0 ** -126, tiny, normal)
        y = np.where(np.abs(y) >= 2.0 ** 128, np.copysign(np.inf, x), y)
    return np.where(np.isfinite(x), y, x)


def fetch_wide(t, mem):
    """The padded input tile X[hp, wp, ci] of a Q19 precision: integers (converter applied) or
    float64 values."""
    hp, wp = (t.ho - 1) * t.sy + t.kh, (t.wo - 1) * t.sx + t.kw
    ns = -(-t.cbytes // 16)
    base = getattr(t, "fetch_base", t.feat + t.dma_base)
    img = np.zeros((t.hi, t.wi, ns * 16), dtype=np.int64)
    for s in range(ns):
        for y in range(t.hi):
            a = (base + s * t.surf + y * t.row) % (1 << 32)
            img[y, :, 16 * s:16 * s + 16] = np.frombuffer(mem.read(a, t.wi * 16),
                                                          dtype=np.uint8).reshape(t.wi, 16)
    img = img[:, :, :t.cbytes]
    if getattr(t, "cbuf", None):                    # Q15 on the channel bytes
        img = cbuf_gather(img, *t.cbuf)
    u = unpack_elems(img, t.bits, t.ci)
    pad = t.pad
    if t.fp:
        vals = float_values(u, t.prec)
        padv = float_values(np.array([pad & (0xFFFFFFFF if t.bits == 32 else 0xFFFF)]), t.prec)[0]
        X = np.full((hp, wp, t.ci), padv, dtype=np.float64)
    else:
        vals = np.stack([cvt_elem(t, u[:, :, c], c) for c in range(t.ci)], axis=2)
        X = np.full((hp, wp, t.ci), signed(pad & ((1 << t.bits) - 1), t.bits), dtype=np.int64)
    h, w = min(t.hi, max(hp - t.pt, 0)), min(t.wi, max(wp - t.pl, 0))
    X[t.pt:t.pt + h, t.pl:t.pl + w, :] = vals[:h, :w, :]
    return X


def cvt_elem(t, u, ch):
    """Q6 on an integer element of t.bits bits (Q19: int4, int16), saturating to its range."""
    x = signed(u, t.bits)
    if not t.cvt or not (t.cvt_en >> (ch % 16)) & 1:
        return x
    x = x if t.cvt_signed else u
    scale, offset, trunc = t.lanes[ch % 4]
    y = rshift_round((x + offset) * scale, trunc, t.cvt_half_up) if t.cvt_add_first else \
        rshift_round(x * scale, trunc, t.cvt_half_up) + offset
    return np.clip(y, -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1)


def weights_wide(t, mem):
    """Q19 weights: conv W[o, ky, kx, c] from tiles of NG kernels x KG channels, depthwise
    W[ky, kx, c] from groups of DWG channels; integers or float64 values."""
    nk = 1 if t.dw else min(t.k, t.co_calc)
    c = np.arange(t.ci)
    tap = np.arange(t.kh * t.kw).reshape(t.kh, t.kw)
    if t.dw:
        g = t.dwg
        gw = np.minimum(g, t.ci - g * (c // g))
        idx = (c // g) * t.kh * t.kw * g + tap[:, :, None] * gw + c % g
    else:
        o = np.arange(nk)[:, None, None, None]
        gw = np.minimum(t.kg, t.ci - t.kg * (c // t.kg))
        nko = np.minimum(t.ng, t.k - t.ng * (o // t.ng))
        idx = (o // t.ng) * t.ng * t.kh * t.kw * t.ci + \
            (c // t.kg) * t.kh * t.kw * nko * t.kg + tap[None, :, :, None] * nko * gw + \
            (o % t.ng) * gw + c % t.kg
    nbytes = -(-t.k * t.kh * t.kw * t.ci * t.bits // 8)
    raw = np.frombuffer(mem.read((t.wt + t.dma_base) % (1 << 32), nbytes), dtype=np.uint8)
    u = unpack_elems(raw[None, :], t.bits, t.k * t.kh * t.kw * t.ci)[0][idx]
    return float_values(u, t.prec) if t.fp else signed(u, t.bits)


def round_f32(terms):
    """The exact sum of float64 terms (exact products), rounded once to fp32, nearest even."""
    terms = list(terms)
    d = math.fsum(terms)                         # the exact sum, rounded to double
    f = np.float32(d)
    if float(f) == d or not np.isfinite(d):
        return f
    lo, hi = (f, np.nextafter(f, np.float32(np.inf))) if float(f) < d else \
        (np.nextafter(f, np.float32(-np.inf)), f)
    if (float(lo) + float(hi)) / 2 != d:
        return f                                 # not a tie of fp32: rounding d is rounding the sum
    rest = math.fsum(terms + [-d])               # which side of the tie the exact sum lies
    return hi if rest > 0 else lo if rest < 0 else f


def compute_wide(t, mem):
    """Q19: int4/int16 exact integer sums through the integer DPU; fp16/bf16/tf32 exact products
    summed exactly, rounded once to fp32, through the fp32 DPU of Q18."""
    X = fetch_wide(t, mem)
    W = weights_wide(t, mem)
    ys, xs = np.arange(t.ho) * t.sy, np.arange(t.wo) * t.sx
    win = np.stack([np.stack([X[ys[:, None] + ky, xs[None, :] + kx, :] for kx in range(t.kw)],
                             axis=2) for ky in range(t.kh)], axis=2)    # [ho, wo, kh, kw, ci]
    cc = min(t.ci, t.co_calc) if t.dw else W.shape[0]
    if not t.fp:
        acc = np.zeros((t.ho, t.wo, t.co_calc), dtype=np.int64)
        if t.dw:
            acc[:, :, :cc] = np.einsum("hwyxc,yxc->hwc", win, W)[:, :, :cc]
            S = np.zeros_like(acc)
            S[:, :, :cc] = win.sum(axis=(2, 3))[:, :, :cc]
        else:
            flat = win.reshape(t.ho, t.wo, -1)
            acc[:, :, :cc] = flat @ W.reshape(cc, -1).T
            S = np.broadcast_to(flat.sum(axis=2)[:, :, None], acc.shape)
        cacc_pass(t, acc)
        return dpu_int(t, mem, acc, S)
    acc = np.zeros((t.ho, t.wo, t.co_calc), dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        if t.dw:
            prods = win[:, :, :, :, :cc] * W[None, None, :, :, :cc]   # [ho, wo, kh, kw, cc]
            prods = np.moveaxis(prods.reshape(t.ho, t.wo, -1, cc), 2, 3)
        else:
            flat = win.reshape(t.ho, t.wo, 1, -1)
            prods = flat * W.reshape(cc, -1)[None, None]               # [ho, wo, cc, n]
        for idx in np.ndindex(t.ho, t.wo, cc):
            row = prods[idx]
            acc[idx] = round_f32(row.tolist()) if np.isfinite(row).all() else \
                np.float32(np.sum(row))              # NaN, inf·0, inf − inf: NaN; else inf
    acc[np.isnan(acc)] = np.float32(np.nan)         # the quiet NaN 0x7FC00000
    bias = None
    if t.bs["on"] and t.bs["alu"] and t.bs["mem"]:
        bias = np.frombuffer(mem.read((t.bias + t.dma_base) % (1 << 32), 4 * t.co),
                             dtype="<u4")[:t.co_calc]
    e = fetch_ew_wide(t, mem) if t.ew_op else None
    from . import hwflying
    return hwflying.float_pipe(t.r, acc, t.bs, t.bn, t.r["DPU_EW_CFG"], e, bias, None)


def activate(v, s):
    if s["relu"]:
        v = np.maximum(v, 0)
        if s["relux"]:
            v = np.minimum(v, s["cmp"])
    return sat32(v)


OUT_BYTES = {0: 1, 1: 2, 4: 4, 5: 4}      # DPU OUT_PRECISION int8, int16, int32, fp32 (Q10)


def out_cvt(v, scale_reg, shift_reg, offset_reg):
    """Q10, before the output type's saturation: CVT_ROUND 0 ties to even, 1 away from zero."""
    scale, shift, off = s16(scale_reg), shift_reg & 0xFFF, s32(offset_reg)
    away, offset_first = bool(shift_reg >> 30 & 1), bool(shift_reg >> 31 & 1)
    x = (v + off) * scale if offset_first else v * scale
    if away:
        x = np.sign(x) * rshift_round(np.abs(x), shift, True)
    else:
        x = rshift_round(x, shift, False)
    return x if offset_first else x + off


def output_bytes(t, out):
    """The DPU's result as the WDMA holds it: [surface, ho, wo, 16] bytes; C2 = 16 / element
    bytes channels per atom, channels past ORIG_CHANNEL carry OFFSET_PEND's low bytes, MAC gating
    zeroes its lanes (channel % 16)."""
    eo = t.out_bytes
    c2 = 16 // eo
    nsurf = -(-t.co // c2)
    lo, hi = {1: (-2**7, 2**7 - 1), 2: (-2**15, 2**15 - 1), 4: (-2**31, 2**31 - 1)}[eo]
    if getattr(t, "fp", False):               # Q19: fp32, or fp16 by round to nearest even
        with np.errstate(over="ignore"):
            elem = out.astype(np.float16 if t.out_prec == 2 else np.float32)
    else:
        vals = np.clip(out, lo, hi)
        elem = vals.astype(np.float32) if t.out_prec == 5 else vals.astype(f"<i{eo}")
    buf = np.zeros((t.ho, t.wo, nsurf * c2, eo), dtype=np.uint8)
    buf[:, :, :t.co_calc] = elem.view(np.uint8).reshape(t.ho, t.wo, t.co_calc, eo)
    buf[:, :, t.co_calc:] = np.frombuffer((t.pend & 0xFFFFFFFF).to_bytes(4, "little")[:eo],
                                          dtype=np.uint8)
    lanes = [o for o in range(nsurf * c2) if getattr(t, "lane_zero", 0) >> (o % 16) & 1]
    buf[:, :, lanes] = 0
    return buf.reshape(t.ho, t.wo, nsurf, 16).transpose(2, 0, 1, 3)


def fetch_ew(t, mem):
    """Q9: the int8 EW operand e[ho, wo, co16] from one or two streams."""
    surf = t.wo * t.ho * 16
    nsurf = -(-t.co // 16)
    e = np.zeros((t.ho, t.wo, nsurf * 16), dtype=np.int64)
    for j in range(nsurf):
        if t.two:
            base, notch = (t.ew_base, t.notch[1]) if j % 2 else (t.ew_src, t.notch[0])
            off = (j // 2) * (surf + notch)
        else:
            base, off = t.ew_base, j * t.ew_stride
        raw = np.frombuffer(mem.read((base + t.dma_base + off) % (1 << 32), surf), dtype=np.int8)
        e[:, :, 16 * j:16 * j + 16] = raw.reshape(t.ho, t.wo, 16)
    return e


def fetch_ew_wide(t, mem):
    """Q17: the EW operand e[ho, wo, co_calc] from the registers (EW_OP_VALUE_[(c/8)%8]) or from
    the ERDMA as 1/2/4-byte elements, C2 = 16/e an atom, per pixel or one per channel."""
    e = np.zeros((t.ho, t.wo, t.co_calc), dtype=np.int64)
    if t.ew_regs:
        e[:, :, :] = [t.ew_values[(c // 8) % 8] for c in range(t.co_calc)]
        return e
    c2, eb = 16 // t.ew_bytes, t.ew_bytes
    for c in range(t.co_calc):
        off = (c // c2) * t.ew_stride + (c % c2) * eb
        if t.ew_mode == 0:
            raw = mem.read((t.ew_base + t.dma_base + off) % (1 << 32), eb)
            e[:, :, c] = int.from_bytes(raw, "little", signed=True)
        else:
            j, base = c // c2, t.ew_base
            if getattr(t, "two", False):      # Q9: even surfaces from SRC_BASE, odd from EW_BASE
                base = t.ew_base if j % 2 else t.ew_src
                off = (j // 2) * (t.wo * t.ho * 16 + t.notch[j % 2]) + (c % c2) * eb
            surf = mem.read((base + t.dma_base + off - (c % c2) * eb) % (1 << 32),
                            t.wo * t.ho * 16)
            px = np.frombuffer(surf, dtype=np.uint8).reshape(t.ho, t.wo, 16)
            px = px[:, :, (c % c2) * eb:(c % c2 + 1) * eb].copy().view(f"<i{eb}")
            e[:, :, c] = px[:, :, 0]
    return e


def write_output(t, mem, out):
    """Q11: one contiguous write per 16-channel surface; Q15 mac-gating lanes and size-e."""
    per = t.group * t.out_bytes // 16
    out = output_bytes(t, out)
    written, hang = getattr(t, "surf_written", per), getattr(t, "size_e_hang", False)
    budget = 1024
    for j in range(out.shape[0]):
        if j % per >= written:
            continue                      # SIZE_E below the writer's line
        off = (j // per) * t.surf_add + (j % per) * t.dst_stride
        data = out[j].tobytes()
        if hang:                          # the first 1024 bytes, then the writer stalls
            data = data[:budget]
            budget -= len(data)
        at = t.dst + t.dma_base + off
        row = t.wo * 16                   # rows NOTCH_ADDR_0 atoms apart (Q19)
        for y in range(0, -(-len(data) // row) if t.onotch else 1):
            chunk = data[y * row:(y + 1) * row] if t.onotch else data
            mem.write((at + y * (t.wo + t.onotch) * 16) % (1 << 32), chunk)
        if hang and not budget:
            break
    if hang:
        raise Hang


# ---- Q16: PPU pooling (standalone pool tasks fed by PPU_RDMA) ----

PPU_BITS, PPU_RDMA_BITS = 0x20, 0x40
# PROC_PRECISION -> element bytes; 4 (int32) and 5 (fp32) write zeros
POOL_ELEM = {0: 1, 1: 2, 2: 2, 4: 4, 5: 4}


class Pool:
    pass


def pool_pair_ok(prec, width, method):
    """Q16 "Precision": the measured (PROC_PRECISION, PPU_RDMA IN_PRECISION) pairs."""
    if prec == 0:
        return width in (1, 2) or (width == 3 and method != 0)
    if prec in (1, 2):
        return width == 2
    return prec in (4, 5) and width == 3


def decode_pool(r, opn):
    """Q16 "Scope", "Refused", "Fields", "Precision", "Layout"; raises Refused."""
    t = Pool()
    mode, fmt, misc = r["PPU_OPERATION_MODE_CFG"], r["PPU_DATA_FORMAT"], r["PPU_MISC_CTRL"]
    if opn & 0x1D or not opn & PPU_BITS or not opn & PPU_RDMA_BITS:
        raise Refused("DPU -> PPU, or one of the pair")
    if not field("PPU_OPERATION_MODE_CFG", "FLYING_MODE", mode) or \
            field("PPU_DATA_FORMAT", "DPU_FLYIN", fmt):
        raise Refused("input from the DPU")
    if field("PPU_OPERATION_MODE_CFG", "INDEX_EN", mode) or \
            field("PPU_OPERATION_MODE_CFG", "NOTCH_ADDR", mode) or \
            field("PPU_MISC_CTRL", "NONALIGN", misc) or field("PPU_MISC_CTRL", "MC_SURF_OUT", misc):
        raise Refused("INDEX_EN, NOTCH_ADDR, NONALIGN or MC_SURF_OUT")
    t.method = field("PPU_OPERATION_MODE_CFG", "POOLING_METHOD", mode)
    t.prec = field("PPU_DATA_FORMAT", "PROC_PRECISION", fmt)
    if t.method == 3 or t.prec not in POOL_ELEM or \
            not pool_pair_ok(t.prec, r.f("PPU_RDMA_DATA_FORMAT", "IN_PRECISION"), t.method):
        raise Refused("method or precision")
    t.e = POOL_ELEM[t.prec]
    t.c2 = 16 // t.e
    t.iw = r.f("PPU_DATA_CUBE_IN_WIDTH", "CUBE_IN_WIDTH") + 1
    t.ih = r.f("PPU_DATA_CUBE_IN_HEIGHT", "CUBE_IN_HEIGHT") + 1
    t.c = r.f("PPU_DATA_CUBE_IN_CHANNEL", "CUBE_IN_CHANNEL") + 1
    t.ow = r.f("PPU_DATA_CUBE_OUT_WIDTH", "CUBE_OUT_WIDTH") + 1
    t.oh = r.f("PPU_DATA_CUBE_OUT_HEIGHT", "CUBE_OUT_HEIGHT") + 1
    if r.f("PPU_DATA_CUBE_OUT_CHANNEL", "CUBE_OUT_CHANNEL") + 1 != t.c:
        raise Refused("channels")
    if (r.f("PPU_RDMA_CUBE_IN_WIDTH", "CUBE_IN_WIDTH") + 1,
            r.f("PPU_RDMA_CUBE_IN_HEIGHT", "CUBE_IN_HEIGHT") + 1,
            r.f("PPU_RDMA_CUBE_IN_CHANNEL", "CUBE_IN_CHANNEL") + 1) != (t.iw, t.ih, t.c):
        raise Refused("RDMA cube")
    k = "PPU_POOLING_KERNEL_CFG"
    t.kw, t.kh = r.f(k, "KERNEL_WIDTH") + 1, r.f(k, "KERNEL_HEIGHT") + 1
    t.sx, t.sy = r.f(k, "KERNEL_STRIDE_WIDTH") + 1, r.f(k, "KERNEL_STRIDE_HEIGHT") + 1
    p = "PPU_POOLING_PADDING_CFG"
    t.pl, t.pt = r.f(p, "PAD_LEFT"), r.f(p, "PAD_TOP")
    t.pr, t.pb = r.f(p, "PAD_RIGHT"), r.f(p, "PAD_BOTTOM")
    if (t.ow - 1) * t.sx + t.kw > t.pl + t.iw + t.pr or \
            (t.oh - 1) * t.sy + t.kh > t.pt + t.ih + t.pb:
        raise Refused("windows past the padded input")
    t.ns = -(-t.c // t.c2)
    lim = 64 << 20
    if t.ns * t.ih * t.iw * 16 > lim or t.ns * t.oh * t.ow * 16 > lim or \
            t.ns * t.oh * t.ow * 16 * t.kw * t.kh > 1 << 33:
        raise Refused("limits")
    t.pad = r["PPU_PADDING_VALUE_1_CFG"] & ((1 << (8 * min(t.e, 2))) - 1)
    t.rw = r.f("PPU_RECIP_KERNEL_WIDTH", "RECIP_KERNEL_WIDTH")
    t.rh = r.f("PPU_RECIP_KERNEL_HEIGHT", "RECIP_KERNEL_HEIGHT")
    base = r["PC_TASK_DMA_BASE_ADDR"] & ~0xF
    t.src = r["PPU_RDMA_SRC_BASE_ADDR"] + base
    t.ls, t.ss = r["PPU_RDMA_SRC_LINE_STRIDE"] & ~0xF, r["PPU_RDMA_SRC_SURF_STRIDE"] & ~0xF
    t.dst = (r["PPU_DST_BASE_ADDR"] & ~0xF) + base
    t.ds = r["PPU_DST_SURF_STRIDE"] & ~0xF
    return t


def fp17(reg):
    """Q16: RECIP_KERNEL_* under fp16 processing, as a float32."""
    e, f = reg >> 10 & 0x3F, reg & 0x3FF
    v = 0.0 if e == 0 else (1 + f / 1024) * 2.0 ** (e - 31)
    return np.float32(-v if reg >> 16 & 1 else v)


def to_fp16_bits(x):
    """float32 array -> binary16 bits, nearest even, overflow to inf, NaN as 0x7E00."""
    with np.errstate(over="ignore", invalid="ignore"):
        h = np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7E00), h)


def rne_shift32(p):
    """round(p / 2^32), ties to even, on an int64 array."""
    q = p >> 32
    rem = p - (q << 32)
    return q + ((rem > 1 << 31) | ((rem == 1 << 31) & (q % 2 == 1)))


def pool_compute(t, cube, first_only):
    """cube [surfaces, ih, iw, c2] of elements (signed ints, or fp16 bits as uint16) -> the output
    atoms [surfaces, oh, ow, c2] of the same kind (Q16 "Window" ... "Average")."""
    fp = t.prec == 2
    if t.e == 4:
        return np.zeros((t.ns, t.oh, t.ow, t.c2), dtype=np.int64)
    if first_only:                      # quirk ppu-kernel16-pad7
        return np.broadcast_to(cube[:, :1, :1, :], (t.ns, t.oh, t.ow, t.c2)).copy()
    pad = t.pad if fp else (t.pad - (1 << 8 * t.e) if t.pad >> (8 * t.e - 1) else t.pad)
    P = np.full((t.ns, t.pt + t.ih + t.pb, t.pl + t.iw + t.pr, t.c2), pad, dtype=np.int64)
    P[:, t.pt:t.pt + t.ih, t.pl:t.pl + t.iw, :] = cube
    hs, ws = (t.oh - 1) * t.sy + 1, (t.ow - 1) * t.sx + 1
    wins = [P[:, ky:ky + hs:t.sy, kx:kx + ws:t.sx, :] for ky in range(t.kh) for kx in range(t.kw)]
    if fp:
        vals = [w.astype(np.uint16).view(np.float16).astype(np.float32) for w in wins]
        if t.method == 0:
            acc = vals[0]
            with np.errstate(invalid="ignore", over="ignore"):
                for v in vals[1:]:
                    acc = (acc + v).astype(np.float32)
                a = (acc * fp17(t.rw)).astype(np.float32)
                b = (a * fp17(t.rh)).astype(np.float32)
            return to_fp16_bits(b).astype(np.int64)
        cur, bits = vals[0], wins[0]
        for v, b in zip(vals[1:], wins[1:]):
            better = v > cur if t.method == 1 else v < cur
            cur, bits = np.where(better, v, cur), np.where(better, b, bits)
        return bits
    if t.method == 0:
        s = np.sum(wins, axis=0)
        lo, hi = -(1 << 8 * t.e - 1), (1 << 8 * t.e - 1) - 1
        return np.clip(rne_shift32(s * t.rw * t.rh), lo, hi)
    return np.max(wins, axis=0) if t.method == 1 else np.min(wins, axis=0)


def run_pool(r, mem, opn, q):
    """One pool task (Q16) with the PPU quirks of Q15; returns error bits, raises Hang."""
    try:
        t = decode_pool(r, opn)
    except Refused:
        return ERR_READ
    if t.kw == t.kh and t.sx == t.sy == 1 and \
            ((3 <= t.kw <= 4 and t.iw > 34) or (5 <= t.kw <= 8 and t.iw > 20)) and \
            q.fire("ppu-width-hang"):
        raise Hang
    first_only = ((t.kw == 16 and 7 in (t.pl, t.pr)) or (t.kh == 16 and 7 in (t.pt, t.pb))) and \
        q.fire("ppu-kernel16-pad7")
    dt = {1: "<i1", 2: "<u2" if t.prec == 2 else "<i2", 4: "<i4"}[t.e]
    cube = np.zeros((t.ns, t.ih, t.iw, t.c2), dtype=np.int64)
    try:
        for s in range(t.ns):
            for y in range(t.ih):
                raw = mem.read((t.src + s * t.ss + y * t.ls) % (1 << 32), t.iw * 16)
                cube[s, y] = np.frombuffer(raw, dtype=dt).reshape(t.iw, t.c2)
    except Fault:
        return ERR_READ
    out = pool_compute(t, cube, first_only)
    odt = {1: "<i1", 2: "<u2" if t.prec == 2 else "<i2", 4: "<i4"}[t.e]
    try:
        for s in range(t.ns):
            mem.write((t.dst + s * t.ds) % (1 << 32), out[s].astype(odt).tobytes())
    except Fault:
        return ERR_WRITE
    return 0


def run_job(segments, kicks, quirks=None, report=None):
    """Run a job: {iova: bytes}, [(regcmd, amount, task_con)] -> (Memory, [raw status per kick]).

    quirks: the Q15 quirks applied (None: the defaults; a set of names, empty = ideal hardware; or
    a switch string "on" / "off" / "all" / "-size-e,..."). report: a list that receives one dict per
    task run: kick, task, quirks / quirks_off (names that fired / whose trigger held while
    switched off, in Q15's order), hang, error bits. A hung kick resets the core (the driver's
    timeout handler) and shows raw status 0."""
    on = quirk_set(quirks)
    mem, status = Memory(segments), []
    tasks = []
    core = Core(on, tasks)
    for k, (regcmd, amount, task_con) in enumerate(kicks):
        core.r.v[0x34] = 0
        first = len(tasks)
        raw, hang, _ = core.kick(mem, regcmd, amount, task_con)
        for t in tasks[first:]:
            t["kick"] = k
        if hang:
            core = Core(on, tasks)
        status.append(raw)
    if report is not None:
        report.extend(tasks)
    return mem, status
