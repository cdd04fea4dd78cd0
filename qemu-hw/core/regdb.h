/* Register database of the RK3588 NPU, generated from rknpu-regs.def. */
#ifndef RKNPU_REGDB_H
#define RKNPU_REGDB_H

#include <stddef.h>
#include <stdint.h>

/* Register offsets within one core's 64 KiB window: RN_<BLOCK>_<REG>. */
enum rn_reg_offset {
#define RN_REG(blk, name, off, rst, acc) RN_##blk##_##name = (off),
#define RN_FIELD(blk, reg, f, msb, lsb)
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};

/* Field positions: RN_<BLOCK>_<REG>__<FIELD>_{SHIFT,WIDTH}. */
enum rn_field_pos {
#define RN_REG(blk, name, off, rst, acc)
#define RN_FIELD(blk, reg, f, msb, lsb) \
    RN_##blk##_##reg##__##f##_SHIFT = (lsb), \
    RN_##blk##_##reg##__##f##_WIDTH = (msb) - (lsb) + 1,
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};

/* Extract a field from a register value: RN_FX(v, CNA, CONV_CON1, CONV_MODE). */
#define RN_FX(v, blk, reg, f) \
    (((uint32_t)(v) >> RN_##blk##_##reg##__##f##_SHIFT) & \
     (uint32_t)((1ull << RN_##blk##_##reg##__##f##_WIDTH) - 1))
/* Build a field value (used by tests and tools). */
#define RN_FV(blk, reg, f, x) \
    (((uint32_t)(x) & (uint32_t)((1ull << RN_##blk##_##reg##__##f##_WIDTH) - 1)) \
     << RN_##blk##_##reg##__##f##_SHIFT)

enum rn_block {
    RN_BLK_PC, RN_BLK_CNA, RN_BLK_CORE, RN_BLK_DPU, RN_BLK_DPU_RDMA, RN_BLK_PPU,
    RN_BLK_PPU_RDMA, RN_BLK_DDMA, RN_BLK_SDMA, RN_BLK_GLOBAL, RN_BLK_COUNT
};

enum rn_access { RN_ACC_RW, RN_ACC_RO, RN_ACC_WO };

struct rn_field_info {
    const char *name;
    uint8_t msb, lsb;
};

struct rn_reg_info {
    const char *name;           /* register name without the block prefix */
    enum rn_block block;
    uint16_t offset;
    uint32_t reset;
    enum rn_access access;
    const struct rn_field_info *fields;
    unsigned nfields;
};

const char *rn_block_name(enum rn_block b);
/* Block decoded by offset bits [15:12]; RN_BLK_COUNT for undecoded pages (0x2xxx, 0xA-0xExxx). */
enum rn_block rn_block_of(uint32_t offset);
uint32_t rn_block_base(enum rn_block b);
/* Register at an offset, or NULL. */
const struct rn_reg_info *rn_reg_lookup(uint32_t offset);
/* All registers in offset order. */
const struct rn_reg_info *rn_reg_table(size_t *count);
/* "NAME=val NAME=val ..." for a value; returns the length written (snprintf rules). */
int rn_reg_format_fields(const struct rn_reg_info *r, uint32_t value, char *buf, size_t len);

#endif
