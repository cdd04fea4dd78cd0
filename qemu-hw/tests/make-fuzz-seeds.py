#!/usr/bin/python3
"""Seed inputs of the two fuzz targets (make fuzz), in the formats their sources describe:

  fuzz-seeds/       fuzz-core.c: header, MMIO writes, NPU memory at IOVA 0
  fuzz-qemu-seeds/  fuzz-qemu.c: a list of qtest-level operations on the rk3588-npu device

The core seeds conv0..conv3 are Mesa-style conv jobs kept from the first corpus (rewritten with
the current header); the rest are built here from sim-tests/tinyjob.py: a chain of linked tasks
run as one kick, the same cancelled by a VM stop and re-run, faults half way through a task (an
unmapped output page, a read-only one, a DMA budget), and shapes that trip the CBUF quirks; and
from sim-tests/precjob.py: int4, tf32 and chained fp16 (K accumulation) matmuls.
Run it from anywhere; it rewrites both folders' generated files.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sim-tests"))
import numpy as np  # noqa: E402

import precjob  # noqa: E402
import tinyjob  # noqa: E402

CORE_DIR = os.path.join(HERE, "fuzz-seeds")
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
    return seeds


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


if __name__ == "__main__":
    main()
