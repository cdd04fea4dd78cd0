"""The register database (qemu-hw/core/rknpu-regs.def), parsed: offsets, fields, resets."""
import os
import re

DEF = os.path.join(os.path.dirname(__file__), "..", "..", "qemu-hw", "core", "rknpu-regs.def")

REGS = {}       # "CNA_CONV_CON1" -> offset
RESETS = {}     # offset -> reset value
FIELDS = {}     # "CNA_CONV_CON1" -> {"CONV_MODE": (msb, lsb), ...}
NAMES = {}      # offset -> "CNA_CONV_CON1"

for m in re.finditer(r"RN_REG\((\w+), (\w+), (0x[0-9A-Fa-f]+), (0x[0-9A-Fa-f]+), (\w+)\)",
                     open(DEF).read()):
    name, off = f"{m.group(1)}_{m.group(2)}", int(m.group(3), 16)
    REGS[name], RESETS[off], NAMES[off] = off, int(m.group(4), 16), name
for m in re.finditer(r"RN_FIELD\((\w+), (\w+), (\w+), (\d+), (\d+)\)", open(DEF).read()):
    FIELDS.setdefault(f"{m.group(1)}_{m.group(2)}", {})[m.group(3)] = (int(m.group(4)),
                                                                       int(m.group(5)))

# regcmd target codes: block one-hot | 1 (mesa-rocket-spec §2.1)
TARGET = {0x0: 0x0101, 0x1: 0x0201, 0x3: 0x0801, 0x4: 0x1001, 0x5: 0x2001, 0x6: 0x4001,
          0x7: 0x8001}


def field(reg, name, value):
    """Extract field `name` of register `reg` from a value."""
    msb, lsb = FIELDS[reg][name]
    return (value >> lsb) & ((1 << (msb - lsb + 1)) - 1)


def pack(reg, **fields):
    """Build a register value from field values."""
    v = 0
    for name, x in fields.items():
        msb, lsb = FIELDS[reg][name]
        v |= (x & ((1 << (msb - lsb + 1)) - 1)) << lsb
    return v


def entry(reg, value):
    """One 64-bit regcmd write entry."""
    off = REGS[reg]
    return TARGET[off >> 12] << 48 | (value & 0xFFFFFFFF) << 16 | off


MARKER = 0x0041 << 48


def op_en(blocks):
    return 0x0081 << 48 | blocks << 16 | 0x0008
