/*
 * The DPU's stages for one element: in integer (HARDWARE-UNKNOWNS Q7-Q10, Q17):
 * BS (CPEND, CLIP_TRUNCATE, ALU, MUL, ReLU) → BN (MUL, ALU, ReLU) → EW (operand converter, ALU or
 * MUL, ReLU) → OUT_CVT, and in fp32 (Q18, for the float precisions of Q19 and DPU-only fp16
 * tasks); and the EW operand in the forms the ERDMA and the registers give it.
 */
/* Products and sums round one by one, as the rows of dpu-row.c do: no FMA contraction (GNU C's
 * default on arm64). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>

#include "conv.h"
#include "fp16.h"

/* Q17: MUL with a 16-bit operand, shifted right by the shift for the product's sign (RNE). */
static int64_t mul_stage(const struct rn_alu_stage *s, int64_t v)
{
    int64_t p = v * s->mul_operand;
    return rn_sat32(rn_round_shift(p, p >= 0 ? s->mul_shift : s->mul_shift_neg, false));
}

static int64_t alu_stage(const struct rn_alu_stage *s, int64_t v, int32_t mem_operand)
{
    if (s->alu) {
        int64_t op = s->alu_mem ? mem_operand : s->operand;
        v = rn_nan_first(v, op, s->sub ? v - op : v + op);
    }
    return v;
}

static int64_t activate(bool relu, bool relux, int32_t cmp, int64_t v)
{
    if (relu) {
        v = v < 0 ? 0 : v;
        if (relux && v > cmp) {
            v = cmp;
        }
    }
    return rn_sat32(v);
}

/* EW operation of the main value v and the operand e (Q17). */
static int64_t ew_stage(const struct rn_conv *d, int64_t v, int64_t e)
{
    int64_t x = d->ew_cvt ? rn_ew_cvt(e, d->ew_offset, d->ew_scale, d->ew_shift,
                                      d->ew_add_first, d->ew_half_up)
                          : e;
    if (d->ew_mul) {   /* 32-bit data: the operand's low 16 bits, signed */
        return v * (d->ew_bytes == 4 ? (int64_t)(int16_t)x : x);
    }
    switch (d->ew_algo) {
    case RN_EW_MAX: return v > x ? v : x;
    case RN_EW_MIN: return v < x ? v : x;
    case RN_EW_MINUS: return v - x;
    case RN_EW_ABS: return v < 0 ? -v : v;
    case RN_EW_NEG: return -v;
    default: return v + x;
    }
}

int64_t rn_dpu_value(const struct rn_conv *d, int64_t acc, int64_t wsum, int32_t bias,
                     const int64_t *e)
{
    int64_t v = acc;
    if (d->bs.on && d->cpend) {
        v += rn_cpend(d->ow_op, wsum);
    }
    v = rn_clip_truncate(v, d->trunc, d->trunc_half_up);   /* Q7: after CPEND, before bias */
    if (d->bs.on) {   /* BS: ALU, then MUL */
        v = rn_sat32(alu_stage(&d->bs, v, bias));
        v = d->bs.mul ? mul_stage(&d->bs, v) : v;
        v = activate(d->bs.relu, d->bs.relux, d->bs.relux_cmp, v);
    }
    if (d->bn.on) {   /* BN: MUL, then ALU */
        v = d->bn.mul ? mul_stage(&d->bn, v) : v;
        v = activate(d->bn.relu, d->bn.relux, d->bn.relux_cmp, alu_stage(&d->bn, v, 0));
    }
    if (d->ew_on) {
        if (d->ew_operand) {
            v = ew_stage(d, v, e ? *e : 0);
        }
        v = activate(d->ew_relu, d->ew_relux, d->ew_relux_cmp, v);
    }
    return rn_out_cvt_raw(rn_sat32(v), d->out_scale, d->out_shift, d->out_offset);
}

static float f32(uint32_t bits) { return rn_f32_from_bits(bits); }

static float float_relu(const struct rn_alu_stage *s, float v)
{
    if (s->relu) {
        v = v < 0 ? 0 : v;
        if (s->relux && v > f32((uint32_t)s->relux_cmp)) {
            v = f32((uint32_t)s->relux_cmp);
        }
    }
    return v;
}

static float float_alu(const struct rn_alu_stage *s, float v, uint32_t mem_bits)
{
    if (s->alu) {
        float op = f32(s->alu_mem ? mem_bits : (uint32_t)s->operand);
        v = rn_nan_first(v, op, s->sub ? v - op : v + op);
    }
    return v;
}

/* x · 2^-sh; ldexpf's call skipped at 0, the usual shift */
static float pow2(float x, uint32_t sh)
{
    return sh ? ldexpf(x, -(int)sh) : x;
}

/* Q18: the pipeline in fp32 — register operands are fp32 bits, multipliers fp16 bits. */
float rn_dpu_float(const struct rn_conv *d, const struct rn_lut *lut, float v, uint32_t bias,
                   const int32_t *ew)
{
    if (d->bs.on) {
        v = float_alu(&d->bs, v, bias);
        float m = rn_half_to_float((uint16_t)d->bs.mul_operand);
        v = d->bs.mul ? rn_nan_first(v, m, v * m) : v;
        v = float_relu(&d->bs, v);
    }
    if (d->bn.on) {
        float m = rn_half_to_float((uint16_t)d->bn.mul_operand);
        v = d->bn.mul ? rn_nan_first(v, m, v * m) : v;
        v = float_relu(&d->bn, float_alu(&d->bn, v, 0));
    }
    if (lut) {
        v = (float)rn_lut_eval(lut, v);
    } else if (d->ew_on && d->ew_operand) {
        uint32_t raw = ew ? (uint32_t)*ew : 0;
        float e = d->ew_from_regs ? (d->ew_mul ? rn_half_to_float((uint16_t)raw) : f32(raw))
                : d->ew_bytes == 2 ? rn_half_to_float((uint16_t)raw) : f32(raw);
        v = d->ew_mul ? rn_nan_first(v, e, v * e)
          : d->ew_algo == RN_EW_MAX ? rn_fmax(v, e) : d->ew_algo == RN_EW_MIN ? rn_fmin(v, e)
          : d->ew_algo == RN_EW_MINUS ? rn_nan_first(v, e, v - e)
          : d->ew_algo == RN_EW_ABS ? fabsf(v)
          : d->ew_algo == RN_EW_NEG ? -v : rn_nan_first(v, e, v + e);
    }
    if (d->ew_on) {
        struct rn_alu_stage relu = { .relu = d->ew_relu, .relux = d->ew_relux,
                                     .relux_cmp = d->ew_relux_cmp };
        v = float_relu(&relu, v);
    }
    /* OUT_CVT on float data: CVT_TYPE 1 (q + OFFSET)·SCALE·2^-MINUS_EXP, else q·SCALE·2^-SHIFT
     * + OFFSET */
    {
        float scale = (float)(int16_t)(d->out_scale & 0xFFFF), off = (float)(int32_t)d->out_offset;
        if ((d->out_shift >> 31) & 1) {
            v = pow2(((v + off) * scale), RN_FX(d->out_shift, DPU, OUT_CVT_SHIFT, MINUS_EXP));
        } else {
            v = pow2(v * scale, d->out_shift & 0xFFF) + off;
        }
    }
    return v;
}

void rn_float_store(uint8_t *dst, float v, uint32_t out_prec)
{
    uint32_t u = out_prec == RN_PREC_FP16 ? rn_float_to_half(v) : rn_f32_bits(v);
    uint32_t n = out_prec == RN_PREC_FP16 ? 2 : 4;
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = (uint8_t)(u >> (8 * i));
    }
}

/* Little-endian signed element of 1, 2 or 4 bytes. */
static inline int32_t element(const uint8_t *p, uint32_t bytes)
{
    uint32_t u = 0;
    for (uint32_t i = 0; i < bytes; i++) {
        u |= (uint32_t)p[i] << (8 * i);
    }
    return bytes == 1 ? (int8_t)u : bytes == 2 ? (int16_t)u : (int32_t)u;
}

/* One lane of npix atoms: elements 16 bytes apart. */
static inline void unpack_lane(const uint8_t *raw, uint32_t bytes, size_t npix, int32_t *dst)
{
    for (size_t p = 0; p < npix; p++) {
        dst[p] = element(raw + p * 16, bytes);
    }
}

/*
 * Q17: the EW operand of every computed channel as int32 [channel][pixel], for the forms the
 * int8 fast path does not take: 16- and 32-bit elements (C2 = 16 / bytes channels an atom, from
 * one stream or from the two of COMB_USE), one value per channel (EW_DATA_MODE 0), or the
 * EW_OP_VALUE registers (EW_OP_SRC 0); and every form for the precisions of Q19.
 */
bool rn_fetch_ew_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                      int32_t *ew, struct rn_task_outcome *out)
{
    size_t npix = (size_t)d->wo * d->ho, surf = npix * 16;
    uint32_t c2, nsurf;
    uint8_t *raw;
    if (d->ew_from_regs) {   /* EDATA_SIZE may be anything here, 0 included */
        for (uint32_t o = 0; o < d->co_calc; o++) {
            if (rn_cancelled(c)) {
                return false;
            }
            for (size_t p = 0; p < npix; p++) {
                ew[o * npix + p] = d->ew_reg[(o / 8) % 8];
            }
        }
        return true;
    }
    c2 = 16 / d->ew_bytes;   /* 1, 2 or 4: decode refuses the rest for memory operands */
    nsurf = (d->co_calc + c2 - 1) / c2;
    raw = rn_scratch(c, RN_BUF_ROW, d->ew_per_channel ? 16 : surf);
    if (!raw) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (uint32_t j = 0; j < nsurf; j++) {
        /* COMB_USE bit 0: even surfaces from SRC_BASE, odd ones from EW_BASE (Q9) */
        bool odd = d->ew_two_streams && (j & 1);
        uint32_t base = d->ew_two_streams && !odd ? d->ew_src : d->ew_base;
        uint32_t addr = (uint32_t)(base + d->dma_base +
                                   rn_ew_offset(d->ew_two_streams, j, surf,
                                                odd ? d->ew_notch_ew : d->ew_notch_src,
                                                d->ew_surf_stride));
        size_t len = d->ew_per_channel ? 16 : surf;
        out->st.bytes_read += len;
        if (!rn_dma_get(c, m, addr, raw, len, out)) {
            return false;
        }
        for (uint32_t l = 0; l < c2 && j * c2 + l < d->co_calc; l++) {
            uint32_t o = j * c2 + l;
            if (rn_cancelled(c)) {
                return false;
            }
            if (d->ew_per_channel) {
                int32_t v = element(raw + (size_t)l * d->ew_bytes, d->ew_bytes);
                for (size_t p = 0; p < npix; p++) {
                    ew[o * npix + p] = v;
                }
            } else if (d->ew_bytes == 2) {   /* the element size a constant in each loop */
                unpack_lane(raw + l * 2, 2, npix, ew + o * npix);
            } else if (d->ew_bytes == 1) {
                unpack_lane(raw + l, 1, npix, ew + o * npix);
            } else {
                unpack_lane(raw + l * 4, 4, npix, ew + o * npix);
            }
        }
    }
    return true;
}
