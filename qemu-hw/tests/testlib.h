/* Shared by the core's unit tests: a flat NPU memory, a regcmd builder and a small Mesa-style conv. */
#ifndef RKNPU_TESTLIB_H
#define RKNPU_TESTLIB_H

#include <glib.h>
#include <string.h>

#include "hwchoices.h"
#include "rknpu.h"

/* ---- a flat NPU memory: IOVA [0, MEM_SIZE) is mapped, everything else faults ---- */

#define MEM_SIZE (1u << 20)
static uint8_t mem[MEM_SIZE];
static unsigned n_logs;

static inline int mem_rd(void *o, uint32_t iova, void *buf, size_t len)
{
    (void)o;
    if ((uint64_t)iova + len > MEM_SIZE) {
        return -1;
    }
    memcpy(buf, mem + iova, len);
    return 0;
}

static inline int mem_wr(void *o, uint32_t iova, const void *buf, size_t len)
{
    (void)o;
    if ((uint64_t)iova + len > MEM_SIZE) {
        return -1;
    }
    memcpy(mem + iova, buf, len);
    return 0;
}

static const struct rn_mem flat = { NULL, mem_rd, mem_wr };

static inline void count_log(void *o, enum rn_log_kind k, const char *msg)
{
    (void)o;
    (void)k;
    (void)msg;
    n_logs++;
}

static inline void core_setup(struct rn_core *c)
{
    rn_core_init(c);
    c->log = count_log;
    n_logs = 0;
    memset(mem, 0, sizeof(mem));
}

/* ---- regcmd builder ---- */

struct prog {
    uint64_t e[160];
    unsigned n;
};

static inline uint64_t target_of(uint32_t off)
{
    static const uint16_t t[] = { [RN_BLK_PC] = 0x0101, [RN_BLK_CNA] = 0x0201,
                                  [RN_BLK_CORE] = 0x0801, [RN_BLK_DPU] = 0x1001,
                                  [RN_BLK_DPU_RDMA] = 0x2001, [RN_BLK_PPU] = 0x4001,
                                  [RN_BLK_PPU_RDMA] = 0x8001 };
    return t[rn_block_of(off)];
}

static inline void emit(struct prog *p, uint32_t off, uint32_t val)
{
    p->e[p->n++] = target_of(off) << 48 | (uint64_t)val << 16 | off;
}

static inline void emit_open(struct prog *p, uint32_t blocks)
{
    p->e[p->n++] = 0x0041000000000000ull;
    p->e[p->n++] = 0x0081ull << 48 | (uint64_t)blocks << 16 | 0x0008;
}

static inline void store_prog(const struct prog *p, uint32_t iova)
{
    for (unsigned i = 0; i < p->n; i++) {
        for (int b = 0; b < 8; b++) {
            mem[iova + 8 * i + b] = (uint8_t)(p->e[i] >> (8 * b));
        }
    }
}

/*
 * A 1x1 conv, 2x1 pixels x 16 channels -> 32 channels (2 computed), Mesa-style registers.
 * Input at 0x1000, weights 0x2000, bias 0x3000, output 0x4000.
 */
static inline void conv_1x1(struct prog *p, uint32_t out_addr)
{
    emit(p, RN_DPU_S_POINTER, 0xE);
    emit(p, RN_CNA_CONV_CON3, RN_FV(CNA, CONV_CON3, CONV_X_STRIDE, 1) |
                              RN_FV(CNA, CONV_CON3, CONV_Y_STRIDE, 1));
    emit(p, RN_CNA_DATA_SIZE0, RN_FV(CNA, DATA_SIZE0, DATAIN_WIDTH, 2) |
                               RN_FV(CNA, DATA_SIZE0, DATAIN_HEIGHT, 1));
    emit(p, RN_CNA_DATA_SIZE1, RN_FV(CNA, DATA_SIZE1, DATAIN_CHANNEL, 16));
    emit(p, RN_CNA_WEIGHT_SIZE1, 16);
    emit(p, RN_CNA_WEIGHT_SIZE2, RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_WIDTH, 1) |
                                 RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_HEIGHT, 1) |
                                 RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_KERNELS, 2));
    emit(p, RN_CNA_CVT_CON0, 0xB);
    emit(p, RN_CNA_FEATURE_DATA_ADDR, 0x1000);
    emit(p, RN_CNA_DMA_CON1, 2 * 4);
    emit(p, RN_CNA_DMA_CON2, (uint32_t)(-6) & 0x0FFFFFFF);   /* 4W·(H/4 - 1), H=1 */
    emit(p, RN_CNA_DCOMP_ADDR0, 0x2000);
    emit(p, RN_CNA_CBUF_CON0, RN_FV(CNA, CBUF_CON0, DATA_BANK, 1) |
                              RN_FV(CNA, CBUF_CON0, WEIGHT_BANK, 11));
    emit(p, RN_CNA_CBUF_CON1, 1);   /* one 64-byte unit per row */
    emit(p, RN_CORE_MISC_CFG, 1);
    emit(p, RN_CORE_DATAOUT_SIZE_0, 1);   /* 1 row, 2 wide */
    emit(p, RN_DPU_FEATURE_MODE_CFG, 0x1E4);
    emit(p, RN_DPU_DST_BASE_ADDR, out_addr);
    emit(p, RN_DPU_DST_SURF_STRIDE, 2 * 16);
    emit(p, RN_DPU_DATA_CUBE_WIDTH, 1);
    emit(p, RN_DPU_DATA_CUBE_CHANNEL, RN_FV(DPU, DATA_CUBE_CHANNEL, ORIG_CHANNEL, 1) |
                                      RN_FV(DPU, DATA_CUBE_CHANNEL, CHANNEL, 31));
    emit(p, RN_DPU_BS_CFG, 0x20150);
    emit(p, RN_DPU_BS_OW_CFG, 0x124);
    emit(p, RN_DPU_BN_CFG, 0x53);
    emit(p, RN_DPU_EW_CFG, 0x383);
    emit(p, RN_DPU_OUT_CVT_SCALE, 1);
    emit(p, RN_DPU_OUT_CVT_OFFSET, 0xFFFFFFFF);   /* -1 */
    emit(p, RN_DPU_OFFSET_PEND, 0x55);
    emit(p, RN_DPU_SURFACE_ADD, 2 * 2 * 16);
    emit(p, RN_DPU_RDMA_BRDMA_CFG, 2);
    emit(p, RN_DPU_RDMA_BS_BASE_ADDR, 0x3000);
    emit(p, RN_DPU_RDMA_FEATURE_MODE_CFG, 0x7810);
}

static inline void conv_data(void)
{
    for (int x = 0; x < 2; x++) {
        for (int ch = 0; ch < 16; ch++) {
            mem[0x1000 + x * 16 + ch] = (uint8_t)(int8_t)(ch - 8 + x);
        }
    }
    for (int o = 0; o < 2; o++) {
        for (int ch = 0; ch < 16; ch++) {
            mem[0x2000 + o * 16 + ch] = (uint8_t)(int8_t)(o ? -ch : ch % 5);
        }
    }
    mem[0x3000] = 7;        /* bias[0] = 7 */
    mem[0x3004] = 0xFD;     /* bias[1] = -3 */
    mem[0x3005] = mem[0x3006] = mem[0x3007] = 0xFF;
}

static inline int8_t conv_expect(int o, int x)
{
    int32_t acc = o ? -3 : 7;
    for (int ch = 0; ch < 16; ch++) {
        acc += (ch - 8 + x) * (o ? -ch : ch % 5);
    }
    acc -= 1;   /* OUT_CVT offset, scale 1, shift 0 */
    return (int8_t)(acc < -128 ? -128 : acc > 127 ? 127 : acc);
}

static inline void kick(struct rn_core *c, uint32_t regcmd, uint32_t entries, uint32_t task_con,
                 struct rn_kick_result *res)
{
    rn_core_write(c, RN_PC_BASE_ADDRESS, 1);
    rn_core_write(c, RN_PC_BASE_ADDRESS, regcmd);
    rn_core_write(c, RN_PC_REGISTER_AMOUNTS, (entries + 1) / 2 - 1);
    rn_core_write(c, RN_PC_INTERRUPT_MASK, 0x300);
    rn_core_write(c, RN_PC_INTERRUPT_CLEAR, 0x300);
    rn_core_write(c, RN_PC_TASK_CON, task_con);
    g_assert_true(rn_core_write(c, RN_PC_OPERATION_ENABLE, 1));
    rn_core_kick_sync(c, &flat, res);
}

#endif
