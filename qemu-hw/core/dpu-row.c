/*
 * The fp32 DPU pipeline of rn_dpu_float() (dpu.c, HARDWARE-UNKNOWNS Q18) over rows of elements,
 * for DPU-only tasks: the register fields decoded once a task (rn_dpu_fplan), then each stage a
 * loop over a block of elements that the compiler vectorises. Every element goes through the
 * same operations in the same order as rn_dpu_float()'s; test-elem checks the bytes.
 */
/*
 * These loops need the vectoriser whatever the including build's -O level (QEMU uses -O2); no
 * trapping math lets it turn the selects into blends (no value changes). No contraction: a
 * product and a sum fused into one FMA (GNU C's default on arm64) would round once, not twice.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "conv.h"
#include "fp16.h"

static float f32(uint32_t bits) { return rn_f32_from_bits(bits); }

static void fstage(const struct rn_alu_stage *s, struct rn_fstage *f)
{
    *f = (struct rn_fstage){ .on = s->on, .alu = s->alu, .alu_mem = s->alu_mem, .sub = s->sub,
                             .mul = s->mul, .relu = s->relu, .relux = s->relux,
                             .op = f32((uint32_t)s->operand),
                             .mulf = rn_half_to_float((uint16_t)s->mul_operand),
                             .cmp = f32((uint32_t)s->relux_cmp) };
}

void rn_dpu_fplan(const struct rn_conv *d, const struct rn_lut *lut, struct rn_fplan *q)
{
    struct rn_alu_stage relu = { .on = d->ew_on, .relu = d->ew_relu, .relux = d->ew_relux,
                                 .relux_cmp = d->ew_relux_cmp };
    memset(q, 0, sizeof(*q));
    fstage(&d->bs, &q->bs);
    fstage(&d->bn, &q->bn);
    fstage(&relu, &q->ew_relu);
    q->lut = lut;
    q->ew = !lut && d->ew_on && d->ew_operand;
    q->ew_mul = d->ew_mul;
    q->e_half = d->ew_from_regs ? d->ew_mul : d->ew_bytes == 2;
    q->ew_algo = d->ew_algo;
    q->scale = (float)(int16_t)(d->out_scale & 0xFFFF);
    q->off = (float)(int32_t)d->out_offset;
    q->cvt_offset_first = (d->out_shift >> 31) & 1;
    q->shift = q->cvt_offset_first ? RN_FX(d->out_shift, DPU, OUT_CVT_SHIFT, MINUS_EXP)
                                   : d->out_shift & 0xFFF;
    /* x · 2^-shift is one correctly rounded product, as ldexpf()'s result is, while 2^-shift is
     * a normal float */
    q->use_pow2 = q->shift <= 126;
    q->pow2 = q->use_pow2 ? ldexpf(1.0f, -(int)q->shift) : 0;
    q->fp16_out = d->out_prec == RN_PREC_FP16;
}

/* The stages below run one at a time over a block of elements: each loop has no branch that
 * depends on the registers, and each element still sees rn_dpu_float()'s operations in order. */
#define ROW_BLOCK 256

static void add_op(float *v, size_t n, bool sub, float op)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = rn_nan_first(v[i], op, sub ? v[i] - op : v[i] + op);
    }
}

static void mul_op(float *v, size_t n, float m)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = rn_nan_first(v[i], m, v[i] * m);
    }
}

static void relu_op(const struct rn_fstage *s, float *v, size_t n)
{
    if (!s->relu) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float x = v[i] < 0 ? 0 : v[i];
        v[i] = s->relux && x > s->cmp ? s->cmp : x;
    }
}

static void ew_op(const struct rn_fplan *q, float *v, size_t n, const int32_t *ew)
{
    float e[ROW_BLOCK];
    if (!ew) {   /* no operand: raw 0 */
        for (size_t i = 0; i < n; i++) {
            e[i] = 0;
        }
    } else if (q->e_half) {
        for (size_t i = 0; i < n; i++) {
            e[i] = rn_half_to_float((uint16_t)ew[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            e[i] = f32((uint32_t)ew[i]);
        }
    }
    if (q->ew_mul) {
        for (size_t i = 0; i < n; i++) {
            v[i] = rn_nan_first(v[i], e[i], v[i] * e[i]);
        }
        return;
    }
    switch (q->ew_algo) {
    case RN_EW_MAX:
        for (size_t i = 0; i < n; i++) {
            v[i] = rn_fmax(v[i], e[i]);
        }
        break;
    case RN_EW_MIN:
        for (size_t i = 0; i < n; i++) {
            v[i] = rn_fmin(v[i], e[i]);
        }
        break;
    case RN_EW_MINUS:
        for (size_t i = 0; i < n; i++) {
            v[i] = rn_nan_first(v[i], e[i], v[i] - e[i]);
        }
        break;
    case RN_EW_ABS:
        for (size_t i = 0; i < n; i++) {
            v[i] = fabsf(v[i]);
        }
        break;
    case RN_EW_NEG:
        for (size_t i = 0; i < n; i++) {
            v[i] = -v[i];
        }
        break;
    default:
        for (size_t i = 0; i < n; i++) {
            v[i] = rn_nan_first(v[i], e[i], v[i] + e[i]);
        }
        break;
    }
}

/* OUT_CVT on float data, as rn_dpu_float() ends. */
static void out_cvt_op(const struct rn_fplan *q, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = q->cvt_offset_first ? (v[i] + q->off) * q->scale : v[i] * q->scale;
    }
    if (q->shift && q->use_pow2) {
        mul_op(v, n, q->pow2);
    } else if (q->shift) {
        for (size_t i = 0; i < n; i++) {
            v[i] = ldexpf(v[i], -(int)q->shift);
        }
    }
    if (!q->cvt_offset_first) {
        add_op(v, n, false, q->off);
    }
}

static void block(const struct rn_fplan *q, float bias, float *v, size_t n, const int32_t *ew)
{
    if (q->bs.on) {
        if (q->bs.alu) {
            add_op(v, n, q->bs.sub, q->bs.alu_mem ? bias : q->bs.op);
        }
        if (q->bs.mul) {
            mul_op(v, n, q->bs.mulf);
        }
        relu_op(&q->bs, v, n);
    }
    if (q->bn.on) {
        if (q->bn.mul) {
            mul_op(v, n, q->bn.mulf);
        }
        if (q->bn.alu) {
            add_op(v, n, q->bn.sub, q->bn.op);
        }
        relu_op(&q->bn, v, n);
    }
    if (q->lut) {
        for (size_t i = 0; i < n; i++) {
            v[i] = (float)rn_lut_eval(q->lut, v[i]);
        }
    } else if (q->ew) {
        ew_op(q, v, n, ew);
    }
    if (q->ew_relu.on) {
        relu_op(&q->ew_relu, v, n);
    }
    out_cvt_op(q, v, n);
}

/* The output bits (fp16 or fp32) of m <= ROW_BLOCK elements whose fp16 inputs are in[i]. */
static void compute(const struct rn_fplan *q, float bias, const int32_t *in, const int32_t *ew,
                    size_t m, uint32_t *res)
{
    float v[ROW_BLOCK];
    for (size_t i = 0; i < m; i++) {
        v[i] = rn_half_to_float((uint16_t)in[i]);
    }
    block(q, bias, v, m, ew);
    if (q->fp16_out) {
        for (size_t i = 0; i < m; i++) {
            res[i] = rn_float_to_half(v[i]);
        }
    } else {
        for (size_t i = 0; i < m; i++) {
            res[i] = rn_f32_bits(v[i]);
        }
    }
}

/*
 * With a memo, the inputs' results come from it, each input value computed once (it is a
 * function of the input alone while there is no EW operand): the misses of a block are gathered
 * and computed together first.
 */
static void memo_block(const struct rn_fplan *q, float bias, struct rn_fmemo *memo,
                       const int32_t *in, size_t m, uint32_t *res)
{
    int32_t miss[ROW_BLOCK];
    uint32_t mres[ROW_BLOCK];
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        uint16_t h = (uint16_t)in[i];
        if (!memo->known[h]) {
            memo->known[h] = 1;
            miss[k++] = h;
        }
    }
    if (k) {
        compute(q, bias, miss, NULL, k, mres);
        for (size_t j = 0; j < k; j++) {
            memo->value[miss[j]] = mres[j];
        }
    }
    for (size_t i = 0; i < m; i++) {
        res[i] = memo->value[(uint16_t)in[i]];
    }
}

void rn_dpu_float_row(const struct rn_fplan *q, struct rn_fmemo *memo, uint32_t bias,
                      const int32_t *in, const int32_t *ew, size_t n, uint8_t *dst,
                      size_t stride)
{
    uint32_t res[ROW_BLOCK];
    for (size_t i0 = 0; i0 < n; i0 += ROW_BLOCK) {
        size_t m = n - i0 < ROW_BLOCK ? n - i0 : ROW_BLOCK;
        uint8_t *d = dst + i0 * stride;
        if (memo && !q->ew) {
            memo_block(q, f32(bias), memo, in + i0, m, res);
        } else {
            compute(q, f32(bias), in + i0, ew ? ew + i0 : NULL, m, res);
        }
        if (q->fp16_out) {   /* little-endian, whatever the host's order */
            for (size_t i = 0; i < m; i++) {
                d[i * stride] = (uint8_t)res[i];
                d[i * stride + 1] = (uint8_t)(res[i] >> 8);
            }
        } else {
            for (size_t i = 0; i < m; i++) {
                d[i * stride] = (uint8_t)res[i];
                d[i * stride + 1] = (uint8_t)(res[i] >> 8);
                d[i * stride + 2] = (uint8_t)(res[i] >> 16);
                d[i * stride + 3] = (uint8_t)(res[i] >> 24);
            }
        }
    }
}
