#!/usr/bin/python3
"""Seed inputs of the two fuzz targets (make fuzz), in the formats their sources describe:

  fuzz-seeds/       fuzz-core.c: header, MMIO writes, NPU memory at IOVA 0
  fuzz-qemu-seeds/  fuzz-qemu.c: a list of qtest-level operations on the rk3588-npu device

The core seeds conv0..conv3 are Mesa-style conv jobs kept from the first corpus (rewritten with
the current header); the rest are built here from sim-tests/tinyjob.py: a chain of linked tasks
run as one kick, the same cancelled by a VM stop and re-run (after a task, and mid-task at a DMA),
faults half way through a task (an unmapped output page, a read-only one, a DMA budget), and shapes
that trip the CBUF quirks; from sim-tests/precjob.py: matmuls of every precision (int4, int16,
fp16, bf16, tf32) and chained fp16 (K accumulation); pool tasks (PPU, rknpu/pooljob.py); DPU-only
tasks (test_flying.py's job: EW operations, the LUT); and convs through the DPU's BS/BN
multipliers and EW operands (registers, ERDMA). fuzz-core.dict: the regcmd entries and register
values those paths branch on, for libFuzzer's -dict.
Run it from anywhere; it rewrites both folders' generated files and the dictionary.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sim-tests"))
import numpy as np  # noqa: E402

import precjob  # noqa: E402
import tinyjob  # noqa: E402
from rknpu import pooljob  # noqa: E402
from test_dpu_stages import ew_cfg  # noqa: E402
from test_flying import OPS as FLY_OPS, atoms, ew as fly_ew  # noqa: E402
from test_flying import job as flying_job, sigmoid_regs  # noqa: E402

CORE_DIR = os.path.join(HERE, "fuzz-seeds")
CORE_DICT = os.path.join(HERE, "fuzz-core.dict")
QEMU_DIR = os.path.join(HERE, "fuzz-qemu-seeds")
HDR = 26


# ---- fuzz-core.c ----

def core_input(image, flags=0, quirks=0, budget=0, page_map=b"", writes=()):
    hdr = bytes([flags, len(writes)]) + struct.pack("<II", quirks, budget)
    hdr += page_map.ljust(16, b"\0")[:16]
    assert len(hdr) == HDR
    return hdr + b"".join(struct.pack("<HI", o, v) for o, v in writes) + image


def image_of(segments):
    end = max(iova + len(data) for iova, data in segments.items())
    img = bytearray(end)
    for iova, data in segments.items():
        img[iova:iova + len(data)] = data
    return bytes(img)


def entries(prog):
    return [int.from_bytes(prog[i:i + 8], "little") for i in range(0, len(prog), 8)]


def pack(ents):
    return b"".join(e.to_bytes(8, "little") for e in ents)


def set_reg(prog, reg, value):
    """The regcmd with the write of reg changed to value."""
    off = tinyjob.REGS[reg]
    out = [tinyjob.entry(reg, value) if e and (e & 0xFFFF) == off and e >> 48 != 0x0081 else e
           for e in entries(prog)]
    return pack(out)


def linked(job, slot=1088):
    """tinyjob's per-task kicks as one chain: every regcmd but the last links to the next
    (PC_BASE_ADDRESS, PC_REGISTER_AMOUNTS in the stream), so TASK_NUMBER = tasks runs them all."""
    base = job["kicks"][0][0]
    seg = bytearray(job["segments"][base])
    n = len(job["kicks"])
    progs = [entries(bytes(seg[t * slot:(t + 1) * slot])) for t in range(n)]
    amounts = [k[1] for k in job["kicks"]]
    for t in range(n - 1):
        ents = progs[t]
        at = next(i for i, e in enumerate(ents) if e == 0x0041 << 48)
        ents[at:at] = [tinyjob.entry("PC_BASE_ADDRESS", base + (t + 1) * slot),
                       tinyjob.entry("PC_REGISTER_AMOUNTS", amounts[t + 1] + (1 if t + 1 < n - 1
                                                                              else 0))]
        assert len(ents) * 8 <= slot + 16
        progs[t] = ents[:slot // 8]
    job["segments"][base] = b"".join(pack(p) for p in progs)
    return job


def add_regs(prog, regs):
    """The regcmd with register writes added before its op_en."""
    ents = entries(prog)
    at = next(i for i, e in enumerate(ents) if e == 0x0041 << 48)
    ents[at:at] = [tinyjob.entry(r, v & 0xFFFFFFFF) for r, v in regs]
    return pack(ents)


def page_bits(pages, bit):
    m = bytearray(16)
    for p in pages:
        if p < 64:
            m[p // 4] |= bit << (2 * (p % 4))
    return bytes(m)


def core_seeds():
    seeds = {}
    # the first corpus (byte 0 was the number of MMIO writes, then memory), same programs
    for k in range(4):
        path = os.path.join(CORE_DIR, f"conv{k}.bin")
        old = open(path, "rb").read()
        if len(old) > HDR and old[1] == 0 and old[2:HDR] == bytes(HDR - 2):
            continue            # already in the current format
        seeds[f"conv{k}.bin"] = bytes([0, old[0]]) + bytes(HDR - 2) + old[1:]

    chain = linked(tinyjob.conv1x1(w=8, h=4, c=16, k=32, seed=5, base=0, tasks=3))
    img = image_of(chain["segments"])
    seeds["chain3.bin"] = core_input(img, flags=(3 - 1) << 2)
    # as QEMU runs it, cancelled after the first task by a VM stop, then run again
    seeds["chain3-cancel.bin"] = core_input(img, flags=(3 - 1) << 2 | 0x40 | 0x80, budget=1 |
                                            0xFFFFFF00)

    job = tinyjob.conv1x1(w=16, h=8, c=32, k=64, seed=6, base=0)
    img = image_of(job["segments"])
    out_iova, out_len = job["out"]
    out_pages = range(out_iova >> 12, (out_iova + out_len + 0xFFF) >> 12)
    in_iova = min(i for i in job["segments"] if i != job["kicks"][0][0])
    seeds["fault-out-unwritable.bin"] = core_input(img, flags=1, page_map=page_bits(out_pages, 2))
    seeds["fault-in-unreadable.bin"] = core_input(img, flags=1,
                                                  page_map=page_bits([in_iova >> 12], 1))
    seeds["fault-budget.bin"] = core_input(img, flags=2, budget=6000)

    # CBUF: short DATA_ENTRIES (rows overlap), a feature over its banks (rows lost), all quirks on
    job = tinyjob.conv1x1(w=16, h=6, c=48, k=32, seed=7, base=0)
    r = job["kicks"][0][0]
    job["segments"][r] = set_reg(job["segments"][r], "CNA_CBUF_CON1", 12)
    seeds["quirk-short-entries.bin"] = core_input(image_of(job["segments"]))
    job = tinyjob.conv1x1(w=16, h=40, c=64, k=16, seed=8, base=0)
    job["segments"][r] = set_reg(job["segments"][r], "CNA_CBUF_CON0", 1 | 11 << 4)
    seeds["quirk-cbuf-overflow.bin"] = core_input(image_of(job["segments"]), flags=0x20,
                                                  quirks=0x7FF)

    # the other precisions (HARDWARE-UNKNOWNS Q19): int4 and tf32 matmuls, and GN's fp16 K
    # accumulation through the EW add, two tasks in one kick
    rng = np.random.default_rng(9)
    a, b = rng.integers(-8, 8, (8, 1, 64)), rng.integers(-8, 8, (64, 64))
    seeds["prec-int4.bin"] = core_input(image_of(precjob.matmul_job("int4", a, b, base=0)
                                                 ["segments"]))
    a, b = rng.standard_normal((4, 1, 32)), rng.standard_normal((16, 32))
    seeds["prec-tf32.bin"] = core_input(image_of(precjob.matmul_job("tf32", a, b, base=0)
                                                 ["segments"]))
    a = rng.integers(-3, 4, (12, 1, 64)).astype(np.float64)
    b = rng.integers(-3, 4, (16, 64)).astype(np.float64)
    seeds["prec-fp16-kacc.bin"] = core_input(image_of(precjob.kacc_job(a, b, 2, base=0)
                                                      ["segments"]), flags=(2 - 1) << 2)
    seeds.update(datapath_seeds(rng))
    return seeds


def datapath_seeds(rng):
    """The datapaths past Mesa's int8 conv: every CNA precision, the PPU, DPU-only tasks with the
    EW stage and the LUT, the DPU's BS/BN multipliers and EW operands in a conv; and a chain
    cancelled mid-task."""
    seeds = {}
    # matmuls in int16, fp16, bf16 (native outputs) and fp16 -> fp16, int16 -> int8, and a 3x3
    # depthwise fp16 conv (C2 = 8 elements an atom, weights in 32-channel groups)
    a, b = rng.integers(-300, 300, (6, 1, 48)), rng.integers(-300, 300, (24, 48))
    seeds["prec-int16.bin"] = core_input(image_of(precjob.matmul_job("int16", a, b, base=0)
                                                  ["segments"]))
    seeds["prec-int16-int8.bin"] = core_input(image_of(precjob.matmul_job(
        "int16", a, b, out="int8", base=0)["segments"]))
    a, b = rng.standard_normal((5, 1, 32)), rng.standard_normal((16, 32))
    for prec, out in (("fp16", None), ("fp16", "fp16"), ("bf16", None)):
        if prec == "bf16":   # values exact in bf16
            a = np.round(a * 8) / 8
            b = np.round(b * 8) / 8
        name = f"prec-{prec}{'-' + out if out else ''}.bin"
        seeds[name] = core_input(image_of(precjob.matmul_job(prec, a, b, out=out, base=0)
                                          ["segments"]))
    lay = tinyjob.Layout(0)
    rc = lay.take(4096)
    x = rng.integers(-8, 8, (6, 6, 16)).astype(np.float64)
    wt = rng.integers(-8, 8, (3, 3, 16)).astype(np.float64)
    xb, wb = precjob.feature(x, "fp16"), precjob.weights(wt, "fp16", dw=True)
    xi, wi, oi = lay.take(len(xb)), lay.take(len(wb)), lay.take(4 * 4 * 16 * 4)
    segs, _ = precjob.chain(lay, [precjob.conv_regs("fp16", "fp32", 6, 6, 16, 16, xi, wi, oi,
                                                    kh=3, kw=3, dw=True)], [rc])
    segs.update({xi: xb, wi: wb, oi: bytes(4 * 4 * 16 * 4)})
    seeds["prec-fp16-dw3x3.bin"] = core_input(image_of(segs))

    # PPU pools: int8 max, int16 average with padding, fp16 average and min (Q16)
    for name, dt, method, kernel, stride, pads in (
            ("pool-int8-max", np.int8, "max", (3, 3), (2, 2), (0, 0, 0, 0)),
            ("pool-int16-avg", np.int16, "avg", (3, 2), (1, 2), (1, 1, 0, 1)),
            ("pool-fp16-avg", np.float16, "avg", (2, 2), (2, 2), (0, 0, 0, 0)),
            ("pool-fp16-min", np.float16, "min", (4, 4), (1, 1), (1, 2, 1, 2))):
        if dt == np.float16:
            x = rng.normal(0, 4, (7, 9, 20)).astype(dt)
        else:
            x = rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, (7, 9, 20)).astype(dt)
        job = pooljob.pool_job(x, method, kernel, stride, pads, base=0)
        # compact: the input right after the regcmd's page, the output after it
        inp = job["segments"][0x10000]
        out = 0x1000 + ((len(inp) + 0xFFF) & ~0xFFF)
        prog = set_reg(set_reg(job["segments"][0], "PPU_RDMA_SRC_BASE_ADDR", 0x1000),
                       "PPU_DST_BASE_ADDR", out)
        seeds[f"{name}.bin"] = core_input(image_of({0: prog, 0x1000: inp,
                                                    out: bytes(job["out"][1])}))

    # DPU-only tasks (Q18): EW operations on int8/int16/int32/fp16 main data, and the LUT (the
    # sigmoid program with the first entries of each table: the regcmd holds 130 entries)
    at = {"regcmd": 0, "main": 0x1000, "operand": 0x2000, "out": 0x3000}
    for prec, op in (("int8", "add"), ("int16", "mul"), ("int32", "minus"), ("fp16", "max")):
        eb = {"int8": 1, "int16": 2, "int32": 4, "fp16": 2}[prec]
        dt = np.float16 if prec == "fp16" else np.dtype(f"<i{eb}")
        x = (rng.normal(0, 50, (3, 5, 20)) if prec == "fp16" else
             rng.integers(-1000, 1000, (3, 5, 20))).astype(dt)
        y = (rng.normal(0, 50, (3, 5, 20)) if prec == "fp16" else
             rng.integers(-1000, 1000, (3, 5, 20))).astype(dt)
        t, algo, _ = FLY_OPS[op]
        j = flying_job(prec, x, fly_ew(t, algo, {1: 1, 2: 2, 4: 3}[eb]), y, at=at)
        seeds[f"flying-{prec}-{op}.bin"] = core_input(image_of(j["segments"]))
    (le, lo), regs = sigmoid_regs()
    x = np.linspace(-7, 7, 4 * 8 * 8).astype(np.float16).reshape(4, 8, 8)
    j = flying_job("fp16", x, 0x300, lut=(le[::16][:24], lo[::16][:24]), extra=regs, at=at)
    seeds["flying-lut-sigmoid.bin"] = core_input(image_of(j["segments"]))

    # a conv through the DPU's other integer stages (Q17): the BS and BN multipliers, EW
    # operands from the EW_OP_VALUE registers and from the ERDMA (16-bit per channel, 8-bit
    # per pixel with MUL)
    job = tinyjob.conv1x1(w=8, h=4, c=16, k=32, seed=10, base=0)
    end = max(i + len(d) for i, d in job["segments"].items())
    ew_at = (end + 0xFFF) & ~0xFFF
    variants = {
        "bs-mul": [("DPU_BS_CFG", 0x20140), ("DPU_BS_MUL_CFG", 0x3800 << 16 | 14 << 8)],
        "bn-mul-alu": [("DPU_BN_CFG", 0x12), ("DPU_BN_ALU_CFG", 5000),
                       ("DPU_BN_MUL_CFG", 3 << 16 | 1 << 8)],
        "ew-regs": [("DPU_EW_CFG", ew_cfg(algo=2, src=0))] +
                   [(f"DPU_EW_OP_VALUE_{n}", n * 7919 - 20000) for n in range(8)],
        "ew-erdma16-channel": [("DPU_EW_CFG", ew_cfg(0, 0, 1, 2, 0)),
                               ("DPU_RDMA_ERDMA_CFG", 2 << 2), ("DPU_RDMA_EW_SURF_STRIDE", 16)],
        "ew-erdma8-pixel-mul": [("DPU_EW_CFG", ew_cfg(1, 0, 1, 1, 1)),
                                ("DPU_RDMA_ERDMA_CFG", 1 << 30 | 1 << 2),
                                ("DPU_RDMA_EW_SURF_STRIDE", 8 * 4 * 16)],
    }
    operands = {"ew-erdma16-channel": atoms(rng.integers(-30000, 30000, (1, 1, 32)).astype("<i2"),
                                            2),
                "ew-erdma8-pixel-mul": atoms(rng.integers(-5, 5, (4, 8, 32)).astype("<i1"), 1)}
    r = job["kicks"][0][0]
    for name, regs in variants.items():
        segs = dict(job["segments"])
        if name in operands:
            regs = regs + [("DPU_RDMA_EW_BASE_ADDR", ew_at), ("DPU_RDMA_DATA_CUBE_WIDTH", 7),
                           ("DPU_RDMA_DATA_CUBE_HEIGHT", 3)]
            segs[ew_at] = operands[name]
        segs[r] = add_regs(segs[r], regs)
        seeds[f"dpu-{name}.bin"] = core_input(image_of(segs))

    # a VM stop in the middle of a task (at the kick's 8th DMA access: task 1's weights), re-run
    chain = linked(tinyjob.conv1x1(w=8, h=4, c=16, k=32, seed=5, base=0, tasks=3))
    seeds["chain3-cancel-mid-task.bin"] = core_input(image_of(chain["segments"]),
                                                     flags=(3 - 1) << 2 | 0x40 | 0x80,
                                                     budget=8 << 3 | 0xFFFFFF00)
    return seeds


def core_dict():
    """libFuzzer dictionary: regcmd entries (8 bytes, little-endian) that select the datapaths
    and their forms: op_en block sets, the precision and mode words, EW/LUT/PPU configurations."""
    ents = [0x0041 << 48] + [0x0081 << 48 | b << 16 | 0x0008 for b in
                             (0x1D, 0x0D, 0x18, 0x10, 0x60, 0x20, 0x40, 0x7D)]
    for code, *_ in precjob.PREC.values():
        ents += [tinyjob.entry("CNA_CONV_CON1", code << 4 | code << 7 | dw)
                 for dw in (0, 3)]
        ents += [tinyjob.entry("CORE_MISC_CFG", code << 8 | qd) for qd in (0, 1)]
    for out, _, half in precjob.OUT.values():
        for _, _, _, _, dpu in precjob.PREC.values():
            ents.append(tinyjob.entry("DPU_DATA_FORMAT", out << 29 | dpu << 26 | dpu))
        ents.append(tinyjob.entry("DPU_OUT_CVT_SCALE", half << 16 | 1))
    for op_type, algo, _ in FLY_OPS.values():
        for size in (1, 2, 3):
            ents.append(tinyjob.entry("DPU_EW_CFG", fly_ew(op_type, algo, size)))
            ents.append(tinyjob.entry("DPU_RDMA_ERDMA_CFG", 1 << 30 | size << 2))
    ents += [tinyjob.entry("DPU_EW_CFG", v) for v in (0x300, 0x383, ew_cfg(algo=2, src=0))]
    ents += [tinyjob.entry("DPU_LUT_CFG", 0x68), tinyjob.entry("DPU_LUT_INFO", 5 << 8 | 5 << 16)]
    ents += [tinyjob.entry("DPU_LUT_ACCESS_CFG", 1 << 17 | t << 16) for t in (0, 1)]
    ents += [tinyjob.entry("DPU_FEATURE_MODE_CFG", v) for v in (0x1E4, 0x1E5)]
    ents += [tinyjob.entry("DPU_BN_CFG", v) for v in (0x12, 0x53)]
    ents += [tinyjob.entry("DPU_BS_CFG", v) for v in (0x20140, 0x20150, 0x53)]
    ents += [tinyjob.entry("PPU_OPERATION_MODE_CFG", 1 << 4 | m) for m in pooljob.METHODS.values()]
    ents += [tinyjob.entry("PPU_DATA_FORMAT", p) for p, _ in pooljob.PRECISIONS.values()]
    ents += [tinyjob.entry("PPU_RDMA_DATA_FORMAT", w) for w in range(4)]
    seen, lines = set(), ["# regcmd entries for fuzz-core (make-fuzz-seeds.py writes this file)"]
    for e in ents:
        if e not in seen:
            seen.add(e)
            lines.append('"' + "".join(f"\\x{b:02x}" for b in e.to_bytes(8, "little")) + '"')
    return "\n".join(lines) + "\n"


# ---- fuzz-qemu.c ----

(OP_MMIO, OP_IOMMU_ENABLE, OP_IOMMU, OP_RESET, OP_REGCMD, OP_DATA, OP_KICK, OP_SETTLE,
 OP_IRQ_DONE, OP_CLOCK, OP_MAP, OP_STOP_CONT, OP_MIGRATE, OP_SYSTEM_RESET, OP_KICK_SETTLE,
 OP_BLOB) = range(16)
REG_INDEX = {name: i for i, name in enumerate(tinyjob.REGS)}    # the .def's order, as in C
TEMPLATE_REGS = 35
IN, WT, BIAS, OUT = range(4)


def regcmd(slot, w=8, h=4, c=16, k=32, kh=1, kw=1, dw=False, over=(), link=False, phys=False,
           extra_amount=0, op_en=None):
    """OP_REGCMD with the conv template; returns (bytes, PC_REGISTER_AMOUNTS of the task)."""
    flags = (1 if phys else 0) | (4 if link else 0) | extra_amount << 4
    ks = (kh - 1) | (kw - 1) << 3 | (0x40 if dw else 0)
    b = bytes([OP_REGCMD, slot, flags, len(over), w - 1, h - 1, c - 1, k - 1, ks])
    for reg, v in over:
        b += bytes([REG_INDEX[reg]]) + struct.pack("<I", v & 0xFFFFFFFF)
    b += bytes([1, op_en]) if op_en is not None else b"\0"
    n = TEMPLATE_REGS + len(over)
    return b, (n + 5) // 2 - 1


def data(region, size, seed):
    return bytes([OP_DATA, region]) + struct.pack("<H", (size - 1) // 4) + bytes([seed | 1])


def kick(core, slot, amount, tasks=1, phys=False):
    return bytes([OP_KICK, core, slot]) + struct.pack("<H", amount) + bytes([tasks, 1 if phys
                                                                             else 0])


def settle(core):
    return bytes([OP_SETTLE, core])


def irq_done(core):
    return bytes([OP_IRQ_DONE, core])


def fills(w=8, h=4, c=16, k=32, seed=3):
    return (data(IN, w * h * 16 * ((c + 15) // 16), seed) + data(WT, k * c * 9, seed + 2) +
            data(BIAS, 4 * k, seed + 4))


def run(core, slot, amount, tasks=1, phys=False):
    return kick(core, slot, amount, tasks, phys) + settle(core) + irq_done(core)


def from_core(blob, core=0):
    """A fuzz-core input as device operations: its memory image as OP_BLOBs (runs of non-zero
    bytes) at the same IOVAs, its MMIO writes, the same final kick on one core (quirk masks and
    DMA fault modes stay behind: the device has its own)."""
    flags, n = blob[0], blob[1]
    img = blob[HDR + 6 * n:]
    ops, at = b"", 0
    while at < len(img):
        if not img[at]:
            at += 1
            continue
        end = at
        while end < len(img) and (img[end] or any(img[end:end + 256])):
            end += 1
        while end - at > 0:
            n_ = min(end - at, 0xFFFF)
            ops += bytes([OP_BLOB]) + at.to_bytes(3, "little") + n_.to_bytes(2, "little") + \
                img[at:at + n_]
            at += n_
    for i in range(n):
        off, v = struct.unpack("<HI", blob[HDR + 6 * i:HDR + 6 * i + 6])
        ops += bytes([OP_MMIO, 0, 0xF2]) + struct.pack("<I", v) + (core * 0x10000 + off).to_bytes(
            3, "little")
    return ops + run(core, 0, 64, tasks=1 + ((flags >> 2) & 7))


def qemu_seeds(core=None):
    seeds = {}
    # the core fuzzer's seeds as device inputs (Mesa-style convs, chains, the other precisions)
    for name, blob in sorted((core or {}).items()):
        ops = from_core(blob, core=len(seeds) % 3)
        if all(ops[:-12] != other[:-12] for other in seeds.values()):   # the same image: once
            seeds[f"core-{name}"] = ops
    prog, amount = regcmd(0)
    seeds["conv.bin"] = prog + fills() + run(0, 0, amount)
    # three cores at once
    s = fills()
    for core in range(3):
        prog, amount = regcmd(2 * core, w=16, h=8, c=32, k=64)
        s += prog
    for core in range(3):
        s += kick(core, 2 * core, amount)
    for core in range(3):
        s += settle(core) + irq_done(core)
    seeds["three-cores.bin"] = s
    # three linked tasks, one kick
    s = fills(16, 8, 32, 32)
    for slot in range(3):
        prog, amount = regcmd(slot, w=16, h=8, c=32, k=32, link=slot < 2,
                              )
        s += prog
    seeds["chain3.bin"] = s + run(1, 0, amount, tasks=3)
    # depthwise 3x3, and a 3x3 conv
    prog, amount = regcmd(3, w=20, h=12, c=48, k=48, kh=3, kw=3, dw=True)
    seeds["depthwise3x3.bin"] = prog + fills(20, 12, 48, 48) + run(2, 3, amount)
    prog, amount = regcmd(4, w=12, h=10, c=24, k=40, kh=3, kw=3)
    seeds["conv3x3.bin"] = prog + fills(12, 10, 24, 40) + run(0, 4, amount)
    # CBUF quirks: rows overlapping (short DATA_ENTRIES), a feature over its banks
    prog, amount = regcmd(5, w=16, h=6, c=48, k=32, over=[("CNA_CBUF_CON1", 12)])
    seeds["quirk-short-entries.bin"] = prog + fills(16, 6, 48, 32) + run(0, 5, amount)
    prog, amount = regcmd(6, w=16, h=40, c=64, k=16, over=[("CNA_CBUF_CON0", 1 | 11 << 4)])
    seeds["quirk-cbuf-overflow.bin"] = prog + fills(16, 40, 64, 16) + run(0, 6, amount)
    # faults: output page unmapped, read-only; the regcmd itself unmapped
    prog, amount = regcmd(0)
    base = prog + fills()
    seeds["fault-out-unmapped.bin"] = base + bytes([OP_MAP]) + struct.pack("<H", 0x800) + \
        bytes([7]) + bytes(4) + run(0, 0, amount) + bytes([OP_IOMMU, 0, 0, 6, 3, 0, 0, 0])
    seeds["fault-out-readonly.bin"] = base + bytes([OP_MAP]) + struct.pack("<H", 0x800) + \
        bytes([0 | 2 << 3]) + struct.pack("<I", 0x800) + run(1, 0, amount)
    seeds["fault-out-mmio.bin"] = base + bytes([OP_MAP]) + struct.pack("<H", 0x800) + \
        bytes([1 | 6 << 3]) + struct.pack("<I", 0x30000) + run(2, 0, amount)
    seeds["fault-regcmd-unmapped.bin"] = base + bytes([OP_MAP, 0, 0, 7]) + bytes(4) + \
        run(0, 0, amount)
    # paging off: the NPU sees physical addresses
    prog, amount = regcmd(7, phys=True)
    seeds["paging-off.bin"] = prog + fills() + bytes([OP_IOMMU, 0, 0, 2, 1, 0, 0, 0]) + \
        bytes([OP_IOMMU, 0, 1, 2, 1, 0, 0, 0]) + run(0, 7, amount, phys=True)
    # a VM stop mid-kick (cancel, re-run), a migration mid-kick, a reset mid-kick, system reset
    prog, amount = regcmd(0, w=64, h=32, c=128, k=128, kh=3, kw=3)
    big = prog + fills(64, 32, 128, 128)
    seeds["stop-cont.bin"] = big + kick(0, 0, amount) + bytes([OP_STOP_CONT, 0]) + settle(0) + \
        irq_done(0)
    seeds["migrate.bin"] = big + kick(1, 0, amount) + bytes([OP_MIGRATE]) + settle(1) + irq_done(1)
    seeds["reset-kick.bin"] = big + kick(0, 0, amount) + bytes([OP_RESET, 0x03]) + \
        kick(0, 0, amount) + settle(0) + irq_done(0)
    seeds["system-reset.bin"] = big + kick(2, 0, amount) + bytes([OP_SYSTEM_RESET]) + \
        bytes([OP_IOMMU_ENABLE, 2]) + kick(2, 0, amount) + settle(2)
    # MMIO anywhere, any size; a kick while busy
    s = b""
    for i, off in enumerate([0x0, 0x1004, 0x2000, 0x3030, 0x40C4, 0x9000, 0xA024, 0xF000]):
        s += bytes([OP_MMIO, 0, 0xF0 | (i & 7)]) + struct.pack("<I", 0x12345678 * (i + 1) &
                                                             0xFFFFFFFF) + off.to_bytes(3, "little")
    prog, amount = regcmd(0)
    seeds["mmio-sizes.bin"] = s + prog + fills() + kick(0, 0, amount) + kick(0, 0, amount) + \
        settle(0) + irq_done(0)
    return seeds


def main():
    cs = core_seeds()
    every = {n: open(os.path.join(CORE_DIR, n), "rb").read() for n in os.listdir(CORE_DIR)}
    every.update(cs)
    for d, seeds in ((CORE_DIR, cs), (QEMU_DIR, qemu_seeds(every))):
        os.makedirs(d, exist_ok=True)
        for name, blob in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(blob)
        print(f"{os.path.relpath(d)}: {len(seeds)} seeds written")
    with open(CORE_DICT, "w") as f:
        f.write(core_dict())


if __name__ == "__main__":
    main()
