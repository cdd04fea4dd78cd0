/*
 * Register programs of single tasks beyond Mesa's int8 convolutions, written as the public rocket
 * userspaces write them: a convolution / matmul of the CNA/CORE precisions of HARDWARE-UNKNOWNS
 * Q19 (librocketnpu gen_matmul_*: the C twin of sim-tests/precjob.py conv_regs), a DPU-only
 * ("flying", Q18) task with an EW operand or the LUT (test_flying.py job()), a PPU pool (Q16,
 * sim-tests/rknpu/pooljob.py pool_regs). For the core's unit tests and `rocketsim bench`; header
 * only, no core code, so it is a program as a user would write it, not the model's reading.
 */
#ifndef RKNPU_PROGS_H
#define RKNPU_PROGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regdb.h"

#define RP_MAX_WRITES 1200   /* a flying task with both LUT tables: 2 x 514 */

struct rp_prog {
    uint32_t off[RP_MAX_WRITES], val[RP_MAX_WRITES];
    unsigned n;
};

static inline void rp_set(struct rp_prog *p, uint32_t off, uint32_t val)
{
    if (p->n < RP_MAX_WRITES) {
        p->off[p->n] = off, p->val[p->n] = val, p->n++;
    }
}

/* The regcmd entry of one write: the block's target in [63:48], the value, the offset. */
static inline uint64_t rp_entry(uint32_t off, uint32_t val)
{
    static const uint16_t target[8] = { 0x0101, 0x0201, 0, 0x0801, 0x1001, 0x2001, 0x4001,
                                        0x8001 };   /* PC, CNA, -, CORE, DPU, DPU_RDMA, PPU, PPU_RDMA */
    return (uint64_t)target[(off >> 12) & 7] << 48 | (uint64_t)val << 16 | off;
}

/*
 * The task's regcmd: its writes, the marker and op_en, padded to whole 16-byte pairs, into e
 * (room for p->n + 3 entries). Returns the entries; PC_REGISTER_AMOUNTS is entries / 2 - 1.
 */
static inline unsigned rp_regcmd(const struct rp_prog *p, uint32_t op_en, uint64_t *e)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->n; i++) {
        e[n++] = rp_entry(p->off[i], p->val[i]);
    }
    e[n++] = 0x0041ull << 48;
    e[n++] = 0x0081ull << 48 | (uint64_t)op_en << 16 | 0x0008;
    if (n % 2) {
        e[n++] = 0;
    }
    return n;
}

/* ---- a convolution of the Q19 precisions, 1x1 on rows: a matmul ---- */

/* CNA code: element bits, weight N-group (kernels per tile), DPU IN/PROC code; the native output:
 * DPU OUT code and element bytes (int4 -> int16, int16 -> int32, floats -> fp32). GN
 * tile-layouts.md, precision-field.md. */
struct rp_prec {
    uint32_t bits, ng, dpu, out, out_bytes;
};

static inline struct rp_prec rp_prec_of(uint32_t code)
{
    switch (code) {
    case 6: return (struct rp_prec){ 4, 64, 6, 1, 2 };    /* int4 */
    case 1: return (struct rp_prec){ 16, 16, 1, 4, 4 };   /* int16 */
    case 2: return (struct rp_prec){ 16, 16, 2, 5, 4 };   /* fp16 */
    case 3: return (struct rp_prec){ 16, 16, 3, 5, 4 };   /* bf16 */
    case 7: return (struct rp_prec){ 32, 16, 5, 5, 4 };   /* tf32 */
    default: return (struct rp_prec){ 8, 32, 0, 4, 4 };   /* int8 */
    }
}

struct rp_conv {
    uint32_t prec;                  /* CNA IN_PRECISION code */
    uint32_t w, h, c, k;            /* input w x h x c, k kernels */
    uint32_t kh, kw, stride, pad;   /* pad: the same on every side */
    uint32_t pad_value;             /* PAD_CON1 */
    bool row_major;                 /* GROUP_LINE_OFF rows (needs w 1, pad 0) */
    bool dw;                        /* depthwise (fp16): k = c, weights [kh][kw][c] */
    uint32_t src, wt, dst;          /* IOVAs */
};

static inline uint32_t rp_conv_wo(const struct rp_conv *c)
{
    return (c->w + 2 * c->pad - c->kw) / c->stride + 1;
}

static inline uint32_t rp_conv_ho(const struct rp_conv *c)
{
    return (c->h + 2 * c->pad - c->kh) / c->stride + 1;
}

/* Feature bytes: surfaces of C2 = 128 / bits channels, [h][w] atoms each. */
static inline size_t rp_conv_feature_bytes(const struct rp_conv *c)
{
    size_t c2 = 128 / rp_prec_of(c->prec).bits;
    return (c->c + c2 - 1) / c2 * c->h * c->w * 16;
}

static inline size_t rp_conv_weight_bytes(const struct rp_conv *c)
{
    size_t k = c->dw ? 1 : c->k;
    return (k * c->kh * c->kw * c->c * rp_prec_of(c->prec).bits + 7) / 8;
}

static inline size_t rp_conv_out_bytes(const struct rp_conv *c)
{
    size_t c2 = 16 / rp_prec_of(c->prec).out_bytes;
    return (c->k + c2 - 1) / c2 * rp_conv_wo(c) * rp_conv_ho(c) * 16;
}

/* CBUF units of one input row: its pixels' channel bytes as int8 channels (Q15, Q19). */
static inline uint32_t rp_cbuf_units(uint32_t w, uint32_t bytes)
{
    uint32_t atoms = (bytes + 15) / 16;
    return atoms / 4 * w + (atoms % 4 == 3 ? w : (w * (atoms % 4) + 3) / 4);
}

/* One convolution task (op_en 0x0D) writing the precision's native output type; QD_EN past 8
 * bits. */
static inline void rp_conv_regs(const struct rp_conv *c, struct rp_prog *p)
{
    struct rp_prec q = rp_prec_of(c->prec);
    uint32_t wo = rp_conv_wo(c), ho = rp_conv_ho(c), surf = wo * ho * 16, kk = c->dw ? 1 : c->k;
    uint32_t per_group = (c->dw ? 32 : q.ng) * q.out_bytes / 16, e = per_group - 1;
    uint32_t entries = rp_cbuf_units(c->w, (c->c * q.bits + 7) / 8);
    uint32_t banks = (entries * c->h + 511) / 512, wbytes = (c->kh * c->kw * c->c * q.bits + 7) / 8;
    banks = banks < 1 ? 1 : banks > 11 ? 11 : banks;
    rp_set(p, RN_DPU_S_POINTER, 0xE);
    rp_set(p, RN_DPU_RDMA_S_POINTER, 0xE);
    rp_set(p, RN_CNA_CONV_CON1, (c->dw ? 3 : 0) | c->prec << 4 | c->prec << 7 |
                                (c->row_major ? 1u << 29 : 0));
    rp_set(p, RN_CNA_CONV_CON2, (c->h + 1) << 4);
    rp_set(p, RN_CNA_CONV_CON3, c->stride | c->stride << 3);
    rp_set(p, RN_CNA_DATA_SIZE0, c->w << 16 | c->h);
    rp_set(p, RN_CNA_DATA_SIZE1, (c->c - 1) << 16 | c->c);
    rp_set(p, RN_CNA_DATA_SIZE2, wo);
    rp_set(p, RN_CNA_DATA_SIZE3, wo * ho);
    rp_set(p, RN_CNA_WEIGHT_SIZE0, wbytes * kk);
    rp_set(p, RN_CNA_WEIGHT_SIZE1, wbytes);
    rp_set(p, RN_CNA_WEIGHT_SIZE2, c->kw << 24 | c->kh << 16 | kk);
    rp_set(p, RN_CNA_CBUF_CON0, banks | (12 - banks) << 4);
    rp_set(p, RN_CNA_CBUF_CON1, entries);
    rp_set(p, RN_CNA_CVT_CON0, 0xB);   /* converter bypassed */
    for (uint32_t i = 0; i < 4; i++) {
        rp_set(p, RN_CNA_CVT_CON1 + 4 * i, 1u << 16);
    }
    rp_set(p, RN_CNA_PAD_CON0, c->pad | c->pad << 4);
    rp_set(p, RN_CNA_FEATURE_DATA_ADDR, c->src);
    rp_set(p, RN_CNA_DMA_CON0, 15 << 16 | 15);
    rp_set(p, RN_CNA_DMA_CON1, c->row_major ? c->c * q.bits / 128 : 4 * c->w);
    rp_set(p, RN_CNA_DMA_CON2, c->row_major ? 0 : (c->w * (c->h - 4)) & 0x0FFFFFFF);
    rp_set(p, RN_CNA_FC_DATA_SIZE0, c->w << 16 | c->h);
    rp_set(p, RN_CNA_FC_DATA_SIZE1, c->c);
    rp_set(p, RN_CNA_DCOMP_ADDR0, c->wt);
    rp_set(p, RN_CNA_PAD_CON1, c->pad_value);
    rp_set(p, RN_CORE_MISC_CFG, c->prec << 8 | (c->dw ? 2 : 0) | (q.bits <= 8 ? 0 : 1));
    rp_set(p, RN_CORE_DATAOUT_SIZE_0, (ho - 1) << 16 | (wo - 1));
    rp_set(p, RN_CORE_DATAOUT_SIZE_1, c->k - 1);
    rp_set(p, RN_DPU_FEATURE_MODE_CFG, 15 << 5 | (c->dw ? 3 << 3 : 0) | 2 << 1);
    rp_set(p, RN_DPU_DATA_FORMAT, q.out << 29 | q.dpu << 26 | q.dpu);
    rp_set(p, RN_DPU_DST_BASE_ADDR, c->dst);
    rp_set(p, RN_DPU_DST_SURF_STRIDE, surf);
    rp_set(p, RN_DPU_DATA_CUBE_WIDTH, wo - 1);
    rp_set(p, RN_DPU_DATA_CUBE_HEIGHT, ho - 1);
    rp_set(p, RN_DPU_DATA_CUBE_NOTCH_ADDR, 0);
    rp_set(p, RN_DPU_DATA_CUBE_CHANNEL, (c->k - 1) << 16 | (c->k - 1));
    rp_set(p, RN_DPU_BS_CFG, 0x53);
    rp_set(p, RN_DPU_BS_OW_CFG, e << 8 | e << 5 | e << 2 | 2);   /* SIZE_E: the kernel group */
    rp_set(p, RN_DPU_BN_CFG, 0x53);
    rp_set(p, RN_DPU_EW_CFG, 0x383);
    rp_set(p, RN_DPU_EW_CVT_SCALE_VALUE, 1);
    rp_set(p, RN_DPU_OUT_CVT_OFFSET, 0);
    rp_set(p, RN_DPU_OUT_CVT_SCALE, 1);
    rp_set(p, RN_DPU_OUT_CVT_SHIFT, 0);
    rp_set(p, RN_DPU_SURFACE_ADD, per_group * surf);
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_WIDTH, wo - 1);
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_HEIGHT, ho - 1);
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_CHANNEL, c->k - 1);
    rp_set(p, RN_DPU_RDMA_SRC_BASE_ADDR, 0);
    rp_set(p, RN_DPU_RDMA_BRDMA_CFG, 0);
    rp_set(p, RN_DPU_RDMA_ERDMA_CFG, 1);
    rp_set(p, RN_DPU_RDMA_FEATURE_MODE_CFG, 15 << 11 | 1 << 4);
}

/* ---- DPU-only ("flying", op_en 0x18): EW with an operand, or the LUT (Q18) ---- */

/* EW_CFG: operand per pixel from the ERDMA, converter and ReLU bypassed, LUT off. op_type 1:
 * MUL; algo: 0 max, 1 min, 2 add, 4 minus; size: 1 int8, 2 16-bit, 3 32-bit elements. */
static inline uint32_t rp_ew_cfg(uint32_t op_type, uint32_t algo, uint32_t size)
{
    return op_type << 2 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9 | algo << 16 | size << 22 | 1 << 28;
}

struct rp_flying {
    uint32_t prec;        /* DPU IN/PROC precision: 0 int8, 1 int16, 4 int32, 2 fp16 */
    uint32_t out;         /* OUT_PRECISION */
    uint32_t w, h, c;
    uint32_t ew_cfg;      /* rp_ew_cfg(), or 0x300 for the LUT */
    uint32_t ew_size;     /* the operand's EW size (1, 2, 3); 0: no operand */
    uint32_t src, operand, dst;
};

/* One DPU-only task (op_en 0x18) on [h][w][c] from the MRDMA (test_flying.py job()); the LUT's
 * tables and registers, if any, are the caller's writes before or after these. */
static inline void rp_flying_regs(const struct rp_flying *f, struct rp_prog *p)
{
    uint32_t surf = f->w * f->h * 16, fp16 = f->prec == 2;
    rp_set(p, RN_DPU_S_POINTER, 0xE);
    rp_set(p, RN_DPU_RDMA_S_POINTER, 0xE);
    rp_set(p, RN_DPU_FEATURE_MODE_CFG, 0x1E5);
    rp_set(p, RN_DPU_RDMA_FEATURE_MODE_CFG,
           1 | f->prec << 15 | f->prec << 5 | (fp16 ? 8 : 0) | 15 << 11);
    rp_set(p, RN_DPU_DATA_FORMAT, f->out << 29 | f->prec << 26 | f->prec);
    rp_set(p, RN_DPU_DATA_CUBE_WIDTH, f->w - 1);
    rp_set(p, RN_DPU_DATA_CUBE_HEIGHT, f->h - 1);
    rp_set(p, RN_DPU_DATA_CUBE_CHANNEL, (f->c - 1) << 16 | (f->c - 1));
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_WIDTH, f->w - 1);
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_HEIGHT, f->h - 1);
    rp_set(p, RN_DPU_RDMA_DATA_CUBE_CHANNEL, f->c - 1);
    rp_set(p, RN_DPU_RDMA_SRC_BASE_ADDR, f->src);
    rp_set(p, RN_DPU_DST_BASE_ADDR, f->dst);
    rp_set(p, RN_DPU_DST_SURF_STRIDE, surf);
    rp_set(p, RN_DPU_SURFACE_ADD, surf);
    rp_set(p, RN_DPU_BS_CFG, 0x53);
    rp_set(p, RN_DPU_BN_CFG, 0x53);
    rp_set(p, RN_DPU_BS_OW_CFG, 0x2);
    rp_set(p, RN_DPU_EW_CFG, f->ew_cfg);
    rp_set(p, RN_DPU_OUT_CVT_SCALE, 1 | (fp16 && f->out == 2 ? 1u << 16 : 0));
    rp_set(p, RN_DPU_OUT_CVT_SHIFT, 0);
    rp_set(p, RN_DPU_OUT_CVT_OFFSET, 0);
    rp_set(p, RN_DPU_RDMA_BRDMA_CFG, 1);
    rp_set(p, RN_DPU_RDMA_NRDMA_CFG, 1);
    rp_set(p, RN_DPU_RDMA_ERDMA_CFG, f->ew_size ? 1u << 30 | f->ew_size << 2 : 1);
    if (f->ew_size) {
        rp_set(p, RN_DPU_RDMA_EW_BASE_ADDR, f->operand);
        rp_set(p, RN_DPU_RDMA_EW_SURF_STRIDE, surf);
    }
}

/*
 * The LUT's sigmoid as GN's and librocketnpu's programs set it (test_flying.py sigmoid_regs):
 * LE and LO tables of 513 entries (Q15 sigmoid samples, 32/2596 apart) and the registers.
 */
static inline void rp_lut_sigmoid(const int16_t *le, const int16_t *lo, struct rp_prog *p)
{
    for (uint32_t t = 0; t < 2; t++) {
        rp_set(p, RN_DPU_LUT_ACCESS_CFG, 1u << 17 | t << 16);   /* write, table t, entry 0 */
        for (uint32_t i = 0; i < 513; i++) {
            rp_set(p, RN_DPU_LUT_ACCESS_DATA, (uint16_t)(t ? lo[i] : le[i]));
        }
    }
    rp_set(p, RN_DPU_LUT_CFG, 0x68);
    rp_set(p, RN_DPU_LUT_INFO, 5 << 8 | 5 << 16);
    rp_set(p, RN_DPU_LUT_LE_START, 0xFFFFC000);
    rp_set(p, RN_DPU_LUT_LO_END, 0x4000);
    rp_set(p, RN_DPU_LUT_LE_SLOPE_SCALE, 23107);
    rp_set(p, RN_DPU_LUT_LE_SLOPE_SHIFT, 22);
    rp_set(p, RN_DPU_BN_CFG, 2 << 16 | 1 << 6);
    rp_set(p, RN_DPU_BN_MUL_CFG, 0x6912u << 16);
    rp_set(p, RN_DPU_BN_ALU_CFG, 0x80000000);
    rp_set(p, RN_DPU_EW_CFG, 0x300);
    rp_set(p, RN_DPU_OUT_CVT_OFFSET, 1);
    rp_set(p, RN_DPU_OUT_CVT_SHIFT, 1u << 31 | 15 << 12);
}

/* ---- a PPU pool from memory (op_en 0x60, Q16) ---- */

struct rp_pool {
    uint32_t w, h, c, ow, oh;            /* input, output */
    uint32_t kw, kh, sx, sy, pl, pt, pr, pb;
    uint32_t method;                     /* 0 average, 1 max, 2 min */
    uint32_t prec, width;                /* PROC_PRECISION, PPU_RDMA IN_PRECISION (fp16: 2, 2) */
    uint32_t pad, rw, rh;                /* PADDING_VALUE_1; RECIP_KERNEL_WIDTH/HEIGHT */
    uint32_t src, dst;
    uint32_t mode_extra, s_pointer;      /* more OPERATION_MODE_CFG bits; S_POINTER (0xE) */
};

/* GN's / AB's pool program (pooljob.py pool_regs, but PADDING_VALUE_2). */
static inline void rp_pool_regs(const struct rp_pool *q, struct rp_prog *p)
{
    uint32_t out_surf = q->oh * q->ow * 16;
    rp_set(p, RN_PPU_S_POINTER, q->s_pointer);
    rp_set(p, RN_PPU_RDMA_S_POINTER, q->s_pointer);
    rp_set(p, RN_PPU_DATA_CUBE_IN_WIDTH, q->w - 1);
    rp_set(p, RN_PPU_DATA_CUBE_IN_HEIGHT, q->h - 1);
    rp_set(p, RN_PPU_DATA_CUBE_IN_CHANNEL, q->c - 1);
    rp_set(p, RN_PPU_DATA_CUBE_OUT_WIDTH, q->ow - 1);
    rp_set(p, RN_PPU_DATA_CUBE_OUT_HEIGHT, q->oh - 1);
    rp_set(p, RN_PPU_DATA_CUBE_OUT_CHANNEL, q->c - 1);
    rp_set(p, RN_PPU_OPERATION_MODE_CFG, RN_FV(PPU, OPERATION_MODE_CFG, FLYING_MODE, 1) |
                                         RN_FV(PPU, OPERATION_MODE_CFG, POOLING_METHOD, q->method) |
                                         q->mode_extra);
    rp_set(p, RN_PPU_POOLING_KERNEL_CFG,
           RN_FV(PPU, POOLING_KERNEL_CFG, KERNEL_WIDTH, q->kw - 1) |
           RN_FV(PPU, POOLING_KERNEL_CFG, KERNEL_HEIGHT, q->kh - 1) |
           RN_FV(PPU, POOLING_KERNEL_CFG, KERNEL_STRIDE_WIDTH, q->sx - 1) |
           RN_FV(PPU, POOLING_KERNEL_CFG, KERNEL_STRIDE_HEIGHT, q->sy - 1));
    rp_set(p, RN_PPU_RECIP_KERNEL_WIDTH, q->rw);
    rp_set(p, RN_PPU_RECIP_KERNEL_HEIGHT, q->rh);
    rp_set(p, RN_PPU_POOLING_PADDING_CFG, q->pl | q->pt << 4 | q->pr << 8 | q->pb << 12);
    rp_set(p, RN_PPU_PADDING_VALUE_1_CFG, q->pad);
    rp_set(p, RN_PPU_DST_BASE_ADDR, q->dst);
    rp_set(p, RN_PPU_DST_SURF_STRIDE, out_surf);
    rp_set(p, RN_PPU_DATA_FORMAT, out_surf | q->prec);
    rp_set(p, RN_PPU_MISC_CTRL, 3);
    rp_set(p, RN_PPU_RDMA_CUBE_IN_WIDTH, q->w - 1);
    rp_set(p, RN_PPU_RDMA_CUBE_IN_HEIGHT, q->h - 1);
    rp_set(p, RN_PPU_RDMA_CUBE_IN_CHANNEL, q->c - 1);
    rp_set(p, RN_PPU_RDMA_SRC_BASE_ADDR, q->src);
    rp_set(p, RN_PPU_RDMA_SRC_LINE_STRIDE, q->w * 16);
    rp_set(p, RN_PPU_RDMA_SRC_SURF_STRIDE, q->h * q->w * 16);
    rp_set(p, RN_PPU_RDMA_DATA_FORMAT, q->width);
}

#endif
