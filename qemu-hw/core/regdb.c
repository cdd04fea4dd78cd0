/* The register database as tables, built from rknpu-regs.def. */
#include "regdb.h"

#include <stdio.h>

#define RO RN_ACC_RO
#define RW RN_ACC_RW
#define WO RN_ACC_WO

/* One flat field array; each register points at its run of fields. */
static const struct rn_field_info fields[] = {
#define RN_REG(blk, name, off, rst, acc)
#define RN_FIELD(blk, reg, f, msb, lsb) { #f, msb, lsb },
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};

/* Index of each register's first field: count fields before it at compile time. */
enum {
#define RN_REG(blk, name, off, rst, acc) RN_FIRST_##blk##_##name, RN_DUMMY_##blk##_##name = RN_FIRST_##blk##_##name - 1,
#define RN_FIELD(blk, reg, f, msb, lsb) RN_FIELDIDX_##blk##_##reg##_##f,
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};

static const struct rn_reg_info regs[] = {
#define RN_REG(blk, name, off, rst, acc) \
    { #name, RN_BLK_##blk, off, rst, acc, &fields[RN_FIRST_##blk##_##name], 0 },
#define RN_FIELD(blk, reg, f, msb, lsb)
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};

#define NREGS (sizeof(regs) / sizeof(regs[0]))
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const block_names[RN_BLK_COUNT] = {
    "PC", "CNA", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA", "DDMA", "SDMA", "GLOBAL",
};
static const uint32_t block_bases[RN_BLK_COUNT] = {
    0x0000, 0x1000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000, 0x8000, 0x9000, 0xF000,
};

const char *rn_block_name(enum rn_block b)
{
    return b < RN_BLK_COUNT ? block_names[b] : "?";
}

uint32_t rn_block_base(enum rn_block b)
{
    return b < RN_BLK_COUNT ? block_bases[b] : 0;
}

enum rn_block rn_block_of(uint32_t offset)
{
    static const signed char page_block[16] = {
        RN_BLK_PC, RN_BLK_CNA, -1, RN_BLK_CORE, RN_BLK_DPU, RN_BLK_DPU_RDMA, RN_BLK_PPU,
        RN_BLK_PPU_RDMA, RN_BLK_DDMA, RN_BLK_SDMA, -1, -1, -1, -1, -1, RN_BLK_GLOBAL,
    };
    int b = offset > 0xFFFF ? -1 : page_block[(offset >> 12) & 0xF];
    return b < 0 ? RN_BLK_COUNT : (enum rn_block)b;
}

/* Field counts are the distance to the next register's first field. */
static unsigned nfields_of(size_t i)
{
    size_t first = (size_t)(regs[i].fields - fields);
    size_t next = i + 1 < NREGS ? (size_t)(regs[i + 1].fields - fields) : NFIELDS;
    return (unsigned)(next - first);
}

static struct rn_reg_info table[NREGS];
static const struct rn_reg_info *by_word[0x10000 / 4];

static void build(void)
{
    static int built;
    if (built) {
        return;
    }
    for (size_t i = 0; i < NREGS; i++) {
        table[i] = regs[i];
        table[i].nfields = nfields_of(i);
        by_word[table[i].offset / 4] = &table[i];
    }
    built = 1;
}

const struct rn_reg_info *rn_reg_lookup(uint32_t offset)
{
    build();
    if (offset > 0xFFFF || (offset & 3)) {
        return NULL;
    }
    return by_word[offset / 4];
}

const struct rn_reg_info *rn_reg_table(size_t *count)
{
    build();
    *count = NREGS;
    return table;
}

int rn_reg_format_fields(const struct rn_reg_info *r, uint32_t value, char *buf, size_t len)
{
    int n = 0;
    if (len) {
        buf[0] = 0;
    }
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct rn_field_info *f = &r->fields[i];
        unsigned width = f->msb - f->lsb + 1u;
        uint32_t v = (uint32_t)((value >> f->lsb) & ((1ull << width) - 1));
        size_t room = (size_t)n < len ? len - (size_t)n : 0;
        n += snprintf(buf + (room ? n : 0), room, "%s%s=%s%x", i ? " " : "", f->name,
                      v > 9 ? "0x" : "", v);
    }
    return n;
}
