/*
 * The model's answers to what the hardware documentation leaves open, one place each.
 * HARDWARE-UNKNOWNS.md gives the evidence and confidence behind every rule (Qn = section n).
 */
#ifndef RKNPU_HWCHOICES_H
#define RKNPU_HWCHOICES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "regdb.h"

/* ---- Q1: PC entries, fetch size, task status ---- */

#define RN_PC_FETCH_ENTRIES(amount) (((uint32_t)(amount) + 1u) * 2u)
#define RN_TASK_STATUS_DONE 0x0000F000u

enum rn_entry_kind { RN_ENTRY_NOP, RN_ENTRY_INVALID, RN_ENTRY_MARKER, RN_ENTRY_OP_EN,
                     RN_ENTRY_WRITE };

static inline enum rn_entry_kind rn_entry_kind(uint64_t e)
{
    uint32_t target = (uint32_t)(e >> 48);
    if (e == 0) {
        return RN_ENTRY_NOP;
    }
    if (!(target & 1)) {
        return RN_ENTRY_INVALID;
    }
    if (target & 0x80) {
        return RN_ENTRY_OP_EN;
    }
    if (target & 0x40) {
        return RN_ENTRY_MARKER;
    }
    return (target & 0xFF00) ? RN_ENTRY_WRITE : RN_ENTRY_INVALID;
}

static inline uint32_t rn_entry_value(uint64_t e) { return (uint32_t)(e >> 16); }
static inline uint32_t rn_entry_offset(uint64_t e) { return (uint32_t)(e & 0xFFFF); }

/* Block-select bits 56..63 → enum rn_block bitmask (bit 58 selects nothing). */
static inline uint32_t rn_entry_blocks(uint64_t e)
{
    static const signed char map[8] = { 0 /* PC */, 1 /* CNA */, -1, 2 /* CORE */, 3 /* DPU */,
                                        4 /* DPU_RDMA */, 5 /* PPU */, 6 /* PPU_RDMA */ };
    uint32_t sel = (uint32_t)(e >> 56), out = 0;
    for (; sel; sel &= sel - 1) {   /* set bits only: one, mostly */
        int i = __builtin_ctz(sel);
        if (map[i] >= 0) {
            out |= 1u << map[i];
        }
    }
    return out;
}

/* GLOBAL_OPERATION_ENABLE / op_en bitmap bits. */
#define RN_OPEN_CNA (1u << 0)
#define RN_OPEN_CORE (1u << 2)
#define RN_OPEN_DPU (1u << 3)
#define RN_OPEN_DPU_RDMA (1u << 4)
#define RN_OPEN_PPU (1u << 5)
#define RN_OPEN_PPU_RDMA (1u << 6)

/* ---- Q2: ping-pong executers toggle after every completed task (bit = enum rn_block) ---- */

static inline uint32_t rn_pp_after_task(const uint32_t *regs, uint32_t executer)
{
    static const uint16_t s_pointer[] = { RN_CNA_S_POINTER, RN_CORE_S_POINTER, RN_DPU_S_POINTER,
                                          RN_DPU_RDMA_S_POINTER, RN_PPU_S_POINTER,
                                          RN_PPU_RDMA_S_POINTER };
    for (unsigned i = 0; i < sizeof(s_pointer) / sizeof(s_pointer[0]); i++) {
        uint32_t v = regs[s_pointer[i] / 4];
        if (RN_FX(v, CNA, S_POINTER, EXECUTER_PP_EN)) {
            executer ^= 1u << rn_block_of(s_pointer[i]);
        }
    }
    return executer;
}

/* ---- Q3: weight bytes the CNA fetches; WEIGHT_REUSE keeps the previous task's weights ---- */

static inline uint64_t rn_weight_dma_bytes(uint32_t cbuf_con0, uint64_t weight_bytes)
{
    return RN_FX(cbuf_con0, CNA, CBUF_CON0, WEIGHT_REUSE) ? 0 : weight_bytes;
}

/* ---- Q4: feature pitches (bytes), normal NC1HWC2 mode ---- */

static inline void rn_feature_pitches(uint32_t line_stride, uint32_t surf_stride, int64_t *row,
                                      int64_t *surf)
{
    int64_t ls = line_stride & 0x0FFFFFFF;
    int64_t ss = surf_stride & 0x0FFFFFFF;
    if (ss & 0x08000000) {
        ss -= 0x10000000;   /* signed 28-bit: negative for tensors under 4 rows */
    }
    *row = 4 * ls;
    *surf = 16 * (ls + ss);
}

/* ---- Q19: the CNA/CORE precisions (CONV_CON1.IN/PROC_PRECISION, MISC_CFG.PROC_PRECISION) ---- */

enum { RN_CNA_INT8 = 0, RN_CNA_INT16 = 1, RN_CNA_FP16 = 2, RN_CNA_BF16 = 3, RN_CNA_INT4 = 6,
       RN_CNA_TF32 = 7 };

struct rn_prec {
    uint8_t bits;        /* element bits in memory: 4, 8, 16 or 32 */
    bool fp;             /* floating point: the MAC sums into fp32 (fp16, bf16, tf32) */
    uint8_t ng, kg;      /* weight tile: kernels (N-group) by channels (K-group) */
    uint8_t dw_group;    /* depthwise weight and output channel group; 0: not modelled */
    uint8_t dpu;         /* DPU IN/PROC_PRECISION that goes with it (tf32: fp32, 5) */
};

/* The precision of code `code`, or false when the CNA has none (4, 5 are reserved). */
static inline bool rn_prec_info(uint32_t code, struct rn_prec *p)
{
    static const struct rn_prec t[8] = {
        [RN_CNA_INT8] = { 8, false, 32, 32, 64, 0 },
        [RN_CNA_INT16] = { 16, false, 16, 32, 0, 1 },
        [RN_CNA_FP16] = { 16, true, 16, 32, 32, 2 },
        [RN_CNA_BF16] = { 16, true, 16, 32, 0, 3 },
        [RN_CNA_INT4] = { 4, false, 64, 32, 0, 6 },
        [RN_CNA_TF32] = { 32, true, 16, 16, 0, 5 },
    };
    if (code >= 8 || !t[code].bits) {
        return false;
    }
    *p = t[code];
    return true;
}

/* tf32: an fp32 operand's mantissa rounded to 10 bits, to nearest, ties to even (L). */
static inline uint32_t rn_tf32_round(uint32_t u)
{
    if (((u >> 23) & 0xFF) == 0xFF) {
        return (u & 0x7FFFFF) ? (u | 0x400000u) & ~0x1FFFu : u;   /* NaN stays NaN, inf */
    }
    return (u + 0xFFFu + ((u >> 13) & 1)) & ~0x1FFFu;   /* a carry moves the exponent on */
}

/*
 * Row-major feature (CONV_CON1.GROUP_LINE_OFF, Q19): at DATAIN_WIDTH 1 and SURF_STRIDE 0 the
 * line stride counts 16-byte atoms and a pixel's atoms follow one another: byte (c, y) =
 * base + y·16·LINE_STRIDE + c·e (GN matmul-as-conv, fp16 and int8; M).
 */
static inline void rn_row_major_pitches(uint32_t line_stride, int64_t *row, int64_t *surf)
{
    *row = 16 * (int64_t)(line_stride & 0x0FFFFFFF);
    *surf = 16;
}

/* ---- Q5 (Q19): weight element index of (o, c, ky, kx) in the hardware's layout ---- */

/*
 * Element (not byte) index: int4 elements are nibbles (Q19). Conv: tiles of NG kernels by KG
 * channels; depthwise: groups of dw_group channels.
 */
static inline uint64_t rn_weight_elem(const struct rn_prec *p, bool dw, uint32_t ci, uint32_t kh,
                                      uint32_t kw, uint32_t k, uint32_t o, uint32_t c,
                                      uint32_t ky, uint32_t kx)
{
    uint64_t taps = (uint64_t)kh * kw, tap = (uint64_t)ky * kw + kx;
    uint32_t ng = p->ng, kg = dw ? p->dw_group : p->kg;
    uint32_t gw = ci - kg * (c / kg) < kg ? ci - kg * (c / kg) : kg;
    uint32_t nk = k - ng * (o / ng) < ng ? k - ng * (o / ng) : ng;
    if (dw) {
        return (c / kg) * taps * kg + tap * gw + c % kg;
    }
    return (uint64_t)(o / ng) * ng * taps * ci + (uint64_t)(c / kg) * taps * nk * kg +
           tap * nk * gw + (uint64_t)(o % ng) * gw + c % kg;
}

/* The int8 weight byte offset (Q5). */
static inline uint64_t rn_weight_offset(bool dw, uint32_t ci, uint32_t kh, uint32_t kw,
                                        uint32_t k, uint32_t o, uint32_t c, uint32_t ky,
                                        uint32_t kx)
{
    struct rn_prec p;
    rn_prec_info(RN_CNA_INT8, &p);
    return rn_weight_elem(&p, dw, ci, kh, kw, k, o, c, ky, kx);
}

/* ---- rounding shared by Q6, Q7, Q9, Q10: round(x / 2^sh), ties to even or up ---- */

static inline int64_t rn_round_shift(int64_t x, unsigned sh, bool half_up)
{
    if (sh == 0) {
        return x;
    }
    if (sh > 62) {
        return 0;   /* every operand here is below 2^62 in magnitude */
    }
    int64_t q = x >> sh;
    uint64_t r = (uint64_t)x & ((1ull << sh) - 1);
    uint64_t half = 1ull << (sh - 1);
    if (r > half || (r == half && (half_up || (q & 1)))) {
        q++;
    }
    return q;
}

static inline int64_t rn_clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static inline int32_t rn_sat32(int64_t v) { return (int32_t)rn_clamp(v, INT32_MIN, INT32_MAX); }

/* ---- Q6: CNA input converter for one byte of channel lane n ---- */

struct rn_cvt_lane {
    int16_t scale, offset;
    uint8_t trunc;
};

/* The converter on an integer element x of `bits` bits (Q19: int4 and int16 as int8). */
static inline int32_t rn_cna_cvt_elem(int64_t x, unsigned bits, bool type_add_first,
                                      bool half_up, const struct rn_cvt_lane *l)
{
    int64_t y;
    if (type_add_first) {
        y = rn_round_shift((x + l->offset) * l->scale, l->trunc, half_up);
    } else {
        y = rn_round_shift(x * l->scale, l->trunc, half_up) + l->offset;
    }
    return (int32_t)rn_clamp(y, -(1ll << (bits - 1)), (1ll << (bits - 1)) - 1);
}

static inline int8_t rn_cna_cvt(uint8_t byte, bool data_signed, bool type_add_first,
                                bool half_up, const struct rn_cvt_lane *l)
{
    return (int8_t)rn_cna_cvt_elem(data_signed ? (int8_t)byte : byte, 8, type_add_first, half_up,
                                   l);
}

/* ---- Q7: CORE CLIP_TRUNCATE on the MAC sum, before the DPU ---- */

static inline int64_t rn_clip_truncate(int64_t acc, unsigned bits, bool half_up)
{
    return rn_round_shift(acc, bits, half_up);
}

/* ---- Q8: CPEND term: OW_OP (s16) times the window sum ---- */

static inline int64_t rn_cpend(uint32_t ow_op, int64_t window_sum)
{
    return (int64_t)(int16_t)(ow_op & 0xFFFF) * window_sum;
}

/* ---- Q9: EW operand converter and operand address ---- */

static inline int64_t rn_ew_cvt(int64_t e, int32_t offset, int16_t scale, unsigned shift,
                                bool type_add_first, bool half_up)
{
    if (type_add_first) {
        return rn_round_shift((e + offset) * scale, shift, half_up);
    }
    return rn_round_shift(e * scale, shift, half_up) + offset;
}

/* Byte offset of surface j's first element in the EW operand, relative to its stream base. */
static inline uint64_t rn_ew_offset(bool two_streams, uint32_t j, uint64_t task_surface_bytes,
                                    uint32_t notch, uint32_t ew_surf_stride)
{
    if (two_streams) {   /* even surfaces from SRC_BASE, odd from EW_BASE */
        return (uint64_t)(j / 2) * (task_surface_bytes + notch);
    }
    return (uint64_t)j * ew_surf_stride;
}

/* ---- Q10: OUT_CVT and the output element ---- */

/* round(x / 2^sh) with ties away from zero (OUT_CVT's CVT_ROUND = 1). */
static inline int64_t rn_round_shift_away(int64_t x, unsigned sh)
{
    return x < 0 ? -rn_round_shift(-x, sh, true) : rn_round_shift(x, sh, true);
}

/* OUT_CVT before the output type's saturation. */
static inline int64_t rn_out_cvt_raw(int32_t v, uint32_t scale_reg, uint32_t shift_reg,
                                     uint32_t offset_reg)
{
    int64_t scale = (int16_t)(scale_reg & 0xFFFF);
    unsigned shift = shift_reg & 0xFFF;
    bool away = (shift_reg >> 30) & 1, offset_first = (shift_reg >> 31) & 1;
    int64_t off = (int32_t)offset_reg, x;
    x = offset_first ? ((int64_t)v + off) * scale : (int64_t)v * scale;
    x = away ? rn_round_shift_away(x, shift) : rn_round_shift(x, shift, false);
    return offset_first ? x : x + off;
}

static inline int8_t rn_out_cvt(int32_t v, uint32_t scale_reg, uint32_t shift_reg,
                                uint32_t offset_reg)
{
    return (int8_t)rn_clamp(rn_out_cvt_raw(v, scale_reg, shift_reg, offset_reg), -128, 127);
}

/* DPU OUT_PRECISION codes the integer pipeline writes, and their element bytes (0: not one). */
enum { RN_PREC_INT8 = 0, RN_PREC_INT16 = 1, RN_PREC_FP16 = 2, RN_PREC_INT32 = 4,
       RN_PREC_FP32 = 5 };

static inline uint32_t rn_out_bytes(uint32_t prec)
{
    return prec == RN_PREC_INT8 ? 1 : prec == RN_PREC_INT16 ? 2
         : prec == RN_PREC_INT32 || prec == RN_PREC_FP32 ? 4 : 0;
}

/*
 * Store an OUT_CVT result as the output type: integers saturate, fp32 is the cast of the int32
 * saturated value (round to nearest even above 2^24); little-endian.
 */
static inline void rn_out_store(uint8_t *dst, int64_t r, uint32_t prec)
{
    uint32_t u;
    switch (prec) {
    case RN_PREC_INT8:
        dst[0] = (uint8_t)(int8_t)rn_clamp(r, INT8_MIN, INT8_MAX);
        return;
    case RN_PREC_INT16:
        u = (uint32_t)(int32_t)rn_clamp(r, INT16_MIN, INT16_MAX);
        dst[0] = (uint8_t)u;
        dst[1] = (uint8_t)(u >> 8);
        return;
    case RN_PREC_FP32: {
        float f = (float)rn_sat32(r);
        memcpy(&u, &f, 4);
        break;
    }
    default:
        u = (uint32_t)rn_sat32(r);
        break;
    }
    for (int i = 0; i < 4; i++) {
        dst[i] = (uint8_t)(u >> (8 * i));
    }
}

/*
 * ---- Q11: WDMA placement of 16-byte surface j and extra channels; a kernel group of G
 * channels of e-byte elements spans group_bytes = G·e / 16 surfaces ----
 */

static inline uint64_t rn_wdma_offset(uint32_t j, uint32_t group_bytes, uint32_t surf_add,
                                      uint32_t surf_stride)
{
    uint32_t per_group = group_bytes / 16u;
    return (uint64_t)(j / per_group) * surf_add + (uint64_t)(j % per_group) * surf_stride;
}

static inline int8_t rn_extra_channel_byte(uint32_t offset_pend)
{
    return (int8_t)(offset_pend & 0xFF);
}

/* Wider outputs: the low bytes of OFFSET_PEND, one element's worth (L: only int8 observed). */
static inline void rn_extra_channel_store(uint8_t *dst, uint32_t offset_pend, uint32_t bytes)
{
    for (uint32_t i = 0; i < bytes; i++) {
        dst[i] = (uint8_t)(offset_pend >> (8 * i));
    }
}

/* ---- Q12: BRDMA entries read ---- */

static inline uint32_t rn_bias_entries(uint32_t cube_channel_field)
{
    return cube_channel_field + 1;
}

/*
 * Q19: the pad element of the other precisions, as the MAC gets it: int4 PAD_CON1[3:0] and
 * int16 [15:0] signed, fp16/bf16 [15:0] and tf32 [31:0] as raw bits (L: only int8's is measured).
 */
static inline int32_t rn_pad_elem(uint32_t pad_con1, uint32_t prec)
{
    switch (prec) {
    case RN_CNA_INT4: return (int32_t)((pad_con1 & 0xF) ^ 8) - 8;
    case RN_CNA_INT16: return (int16_t)(pad_con1 & 0xFFFF);
    case RN_CNA_FP16: case RN_CNA_BF16: return (int32_t)(pad_con1 & 0xFFFF);
    case RN_CNA_TF32: return (int32_t)pad_con1;
    default: return (int8_t)(pad_con1 & 0xFF);
    }
}

/* ---- Q13: pad byte of channel c ---- */

static inline int8_t rn_pad_byte(uint32_t pad_con1, bool dw, uint32_t c)
{
    if (dw && (c % 64u) < 32u && (c & 1u)) {
        return (int8_t)((pad_con1 >> 8) & 0xFF);
    }
    return (int8_t)(pad_con1 & 0xFF);
}

/* ---- Q14: interrupts and errors ---- */

/* The line follows RAW & MASK, but error bits alone never raise it. */
#define RN_IRQ_LINE_MASK (0x1FFFFu & ~((1u << 12) | (1u << 13)))

/* Completion bit of a task, from the executer group of the block that finishes it. */
static inline uint32_t rn_done_irq_bits(uint32_t op_en, uint32_t dpu_executer,
                                        uint32_t ppu_executer)
{
    if (op_en & (1u << 3)) {
        return (1u << 8) << (dpu_executer & 1);
    }
    if (op_en & (1u << 5)) {
        return (1u << 10) << (ppu_executer & 1);
    }
    return (1u << 8);
}

/* ---- Limits: what the model refuses as absurd ---- */

#define RN_MAX_BUF_BYTES (64u << 20)
#define RN_MAX_TASK_MACS (1ull << 33)
#define RN_MAX_KICK_MACS (1ull << 35)
#define RN_MAX_DOT_TERMS (1u << 16)   /* keeps every (u8 x s8) accumulator exact in int32 */

#endif
