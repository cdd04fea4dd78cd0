/*
 * CORE MAC of the precisions other than int8 (HARDWARE-UNKNOWNS Q19), and the DPU after it.
 * Integers (int4, int16) multiply and sum exactly in 64 bits. Floats (fp16, bf16, tf32 — tf32
 * operands first lose their mantissa's low 13 bits, to nearest even) multiply exactly and sum
 * exactly, and the sum is rounded once to fp32, to nearest even: the model's reading of the
 * NVDLA-style wide accumulator (no measurement separates it from an fp32 adder tree). fp16 sums
 * in a 128-bit fixed point (every fp16 product is a multiple of 2^-48 below 2^32), bf16 and tf32
 * in a 640-bit one. Plain C loops: correctness first.
 */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "fp16.h"

enum mac_kind { MAC_INT, MAC_FP16, MAC_FLOAT };

typedef __int128 i128;
typedef unsigned __int128 u128;

/* A finite float operand m·2^e; flags: 0 finite, 1 +inf, 2 -inf, 3 NaN. */
struct fop {
    int32_t m, e;
};

enum { FIN = 0, PINF = 1, NINF = 2, FNAN = 3 };

/* Decode raw float bits of the CNA precision into m·2^e (or a special). */
static uint8_t fdecode(uint32_t raw, uint32_t prec, struct fop *f)
{
    uint32_t sign, ex, fr, ebits = 8, fbits, maxe;
    int bias;
    if (prec == RN_CNA_FP16) {
        sign = raw >> 15, ex = (raw >> 10) & 0x1F, fr = raw & 0x3FF, ebits = 5, fbits = 10;
        bias = 15;
    } else if (prec == RN_CNA_BF16) {
        sign = (raw >> 15) & 1, ex = (raw >> 7) & 0xFF, fr = raw & 0x7F, fbits = 7, bias = 127;
    } else {   /* tf32: an fp32 container, mantissa rounded to 10 bits */
        raw = rn_tf32_round(raw);
        sign = raw >> 31, ex = (raw >> 23) & 0xFF, fr = (raw >> 13) & 0x3FF, fbits = 10;
        bias = 127;
    }
    maxe = (1u << ebits) - 1;
    if (ex == maxe) {
        f->m = 0, f->e = 0;
        return fr ? FNAN : sign ? NINF : PINF;
    }
    f->m = (int32_t)(ex ? fr | (1u << fbits) : fr);
    f->e = (ex ? (int)ex : 1) - bias - (int)fbits;
    f->m = sign ? -f->m : f->m;
    return FIN;
}

/* ---- exact sums, rounded once to fp32 ---- */

static int top_bit(uint64_t v)
{
    int n = 63;
    while (!(v >> n)) {
        n--;
    }
    return n;
}

static uint64_t bit_at(const uint64_t *mag, int n, int i)
{
    return i < 0 || i >= 64 * n ? 0 : (mag[i / 64] >> (i % 64)) & 1;
}

float rn_round_f32(const uint64_t *mag, int n, int lsb, bool neg)
{
    int p = -1, q;
    uint64_t mant = 0;
    bool round, sticky = false;
    float f;
    for (int i = n - 1; i >= 0 && p < 0; i--) {
        if (mag[i]) {
            p = 64 * i + top_bit(mag[i]);
        }
    }
    if (p < 0) {
        return 0.0f;   /* an exact zero sum is +0 (L) */
    }
    /* quantum: 24 significant bits, but never below fp32's 2^-149 */
    q = p - 23 > -149 - lsb ? p - 23 : -149 - lsb;
    if (q < 0) {
        q = 0;   /* the value is exact as it stands */
    }
    for (int i = p; i >= q; i--) {
        mant = mant << 1 | bit_at(mag, n, i);
    }
    round = bit_at(mag, n, q - 1);
    for (int i = 0; i < (q - 1) / 64 && i < n; i++) {   /* sticky: any bit below q - 1 */
        sticky |= mag[i] != 0;
    }
    if (q - 1 > 0 && (q - 1) % 64 && (q - 1) / 64 < n) {
        sticky |= (mag[(q - 1) / 64] & ((1ull << ((q - 1) % 64)) - 1)) != 0;
    }
    if (round && (sticky || (mant & 1))) {
        mant++;
    }
    f = ldexpf((float)mant, q + lsb);   /* exact, or inf past fp32's range */
    return neg ? -f : f;
}

/* 640-bit two's complement fixed point, bit 0 = 2^ACC_LSB: bf16 and tf32 products lie in
 * [2^-272, 2^256) and 2^16 of them stay below 2^273. */
#define ACC_LIMBS 10
#define ACC_LSB (-300)

static void acc_add(uint64_t *a, int64_t m, int e)
{
    uint32_t s = (uint32_t)(e - ACC_LSB), i = s / 64, sh = s % 64;
    uint64_t mag = m < 0 ? (uint64_t)-m : (uint64_t)m;
    uint64_t lo = mag << sh, hi = sh ? mag >> (64 - sh) : 0, c;
    if (m > 0) {
        a[i] += lo;
        hi += a[i] < lo;   /* hi < 2^22: no overflow */
        a[i + 1] += hi;
        c = a[i + 1] < hi;
        for (uint32_t j = i + 2; c && j < ACC_LIMBS; j++) {
            c = ++a[j] == 0;
        }
    } else {
        c = a[i] < lo;
        a[i] -= lo;
        hi += c;
        c = a[i + 1] < hi;
        a[i + 1] -= hi;
        for (uint32_t j = i + 2; c && j < ACC_LIMBS; j++) {
            c = a[j]-- == 0;
        }
    }
}

static float acc_round(uint64_t *a)
{
    bool neg = a[ACC_LIMBS - 1] >> 63;
    if (neg) {   /* magnitude: two's complement */
        uint64_t c = 1;
        for (int i = 0; i < ACC_LIMBS; i++) {
            a[i] = ~a[i] + c;
            c = c && a[i] == 0;
        }
    }
    return rn_round_f32(a, ACC_LIMBS, ACC_LSB, neg);
}

/* The result of a dot product with an inf or NaN operand (L: never probed): NaN for a NaN,
 * inf·0 or inf − inf, else the infinity. */
static float special_dot(const struct fop *a, const uint8_t *fa, const struct fop *b,
                         const uint8_t *fb, const int64_t *xa, const int64_t *xb, size_t n,
                         size_t stride)
{
    bool pos = false, neg = false;
    for (size_t i = 0, k = 0; i < n; i++, k += stride) {
        uint8_t sa = fa[k], sb = fb[k];
        bool za = !sa && (xa ? xa[k] == 0 : a[k].m == 0);
        bool zb = !sb && (xb ? xb[k] == 0 : b[k].m == 0);
        bool na = sa == NINF || (!sa && (xa ? xa[k] < 0 : a[k].m < 0));
        bool nb = sb == NINF || (!sb && (xb ? xb[k] < 0 : b[k].m < 0));
        if (sa == FNAN || sb == FNAN || (sa && zb) || (sb && za)) {
            return NAN;
        }
        if (sa || sb) {
            pos |= na == nb;
            neg |= na != nb;
        }
    }
    return pos && neg ? NAN : pos ? INFINITY : neg ? -INFINITY : 0.0f;
}

/* ---- the MAC of one task ---- */

/*
 * What a dot product needs to know of one operand vector: whether it holds an inf or NaN, and
 * (struct fop vectors) the exponent range of its nonzero finite elements (lo > hi: none).
 */
struct erange {
    int lo, hi;
    bool special;
};

static struct erange exp_range(const struct fop *f, const uint8_t *flag, size_t n)
{
    struct erange r = { 1 << 20, -(1 << 20), false };
    for (size_t i = 0; i < n; i++) {
        r.special |= flag[i] != 0;
        if (f && f[i].m) {
            r.lo = f[i].e < r.lo ? f[i].e : r.lo;
            r.hi = f[i].e > r.hi ? f[i].e : r.hi;
        }
    }
    return r;
}

struct mac {
    const struct rn_conv *d;
    enum mac_kind kind;
    size_t esz;                  /* bytes of one decoded element */
    void *tile, *w, *patch;      /* decoded: int32 (MAC_INT), int64 v·2^24 (fp16), struct fop */
    uint8_t *tflag, *wflag, *pflag;
    struct erange *wexp;         /* float conv: each kernel's specials and exponent range */
    size_t hp, wp, taps, nk;
};

/* Sum over n terms a[k]·b[k], k = i·stride: integers exactly, floats rounded once to fp32. */
static int64_t dot_int(const int32_t *a, const int32_t *b, size_t n, size_t stride)
{
    int64_t s = 0;
    for (size_t i = 0, k = 0; i < n; i++, k += stride) {
        s += (int64_t)a[k] * b[k];
    }
    return s;
}

/*
 * Sum of n terms a[k]·b[k] (k = i·stride), exact, rounded once to fp32. ea, eb: what is known
 * of the operands (conv), or NULL (depthwise): then the flags are scanned here. A MAC_FLOAT sum
 * whose terms all lie within 2^24 (2^88) of each other takes a 64-bit (128-bit) fixed point
 * instead of the 640-bit one: the same exact value, faster.
 */
static float dot_float(const struct mac *mc, const void *a, const uint8_t *fa, const void *b,
                       const uint8_t *fb, size_t n, size_t stride, const struct erange *ea,
                       const struct erange *eb)
{
    bool special = ea && eb && (ea->special || eb->special);
    for (size_t i = 0, k = 0; (!ea || !eb) && i < n && !special; i++, k += stride) {
        special = fa[k] || fb[k];
    }
    if (mc->kind == MAC_FP16) {
        const int64_t *xa = a, *xb = b;
        i128 s = 0;
        u128 u;
        uint64_t mag[2];
        if (special) {
            return special_dot(NULL, fa, NULL, fb, xa, xb, n, stride);
        }
        for (size_t i = 0, k = 0; i < n; i++, k += stride) {
            s += (i128)xa[k] * xb[k];
        }
        u = s < 0 ? -(u128)s : (u128)s;
        mag[0] = (uint64_t)u;
        mag[1] = (uint64_t)(u >> 64);
        return rn_round_f32(mag, 2, -48, s < 0);
    } else {
        const struct fop *pa = a, *pb = b;
        uint64_t acc[ACC_LIMBS] = { 0 };
        if (special) {
            return special_dot(pa, fa, pb, fb, NULL, NULL, n, stride);
        }
        if (ea && eb && (ea->lo > ea->hi || eb->lo > eb->hi)) {
            return 0.0f;   /* every product is zero */
        }
        if (ea && eb && (ea->hi + eb->hi) - (ea->lo + eb->lo) <= 24) {
            /* |products| < 2^(22 + span) · 2^lo, 2^16 of them: below 2^62 */
            int lo = ea->lo + eb->lo;
            int64_t s64 = 0;
            uint64_t mag[1];
            for (size_t i = 0, k = 0; i < n; i++, k += stride) {
                int64_t m = (int64_t)pa[k].m * pb[k].m;
                if (m) {   /* zero terms' exponents are outside [lo, hi] */
                    s64 += (int64_t)((uint64_t)m << (pa[k].e + pb[k].e - lo));
                }
            }
            mag[0] = s64 < 0 ? -(uint64_t)s64 : (uint64_t)s64;
            return rn_round_f32(mag, 1, lo, s64 < 0);
        }
        if (ea && eb && (ea->hi + eb->hi) - (ea->lo + eb->lo) <= 88) {
            /* |products| < 2^(22 + span) · 2^lo, 2^16 of them: below 2^126 */
            int lo = ea->lo + eb->lo;
            i128 s = 0;
            u128 u;
            uint64_t mag[2];
            for (size_t i = 0, k = 0; i < n; i++, k += stride) {
                int64_t m = (int64_t)pa[k].m * pb[k].m;
                if (m) {
                    s += (i128)m * ((i128)1 << (pa[k].e + pb[k].e - lo));
                }
            }
            u = s < 0 ? -(u128)s : (u128)s;
            mag[0] = (uint64_t)u;
            mag[1] = (uint64_t)(u >> 64);
            return rn_round_f32(mag, 2, lo, s < 0);
        }
        for (size_t i = 0, k = 0; i < n; i++, k += stride) {
            int64_t m = (int64_t)pa[k].m * pb[k].m;
            if (m) {
                acc_add(acc, m, pa[k].e + pb[k].e);
            }
        }
        return acc_round(acc);
    }
}

/* Decode n int32 elements (values or raw float bits) into the MAC's form. */
static void decode(const struct mac *mc, const int32_t *src, void *dst, uint8_t *flag, size_t n)
{
    const struct rn_conv *d = mc->d;
    for (size_t i = 0; i < n; i++) {
        struct fop f = { 0, 0 };
        uint8_t s;
        if (mc->kind == MAC_INT) {
            ((int32_t *)dst)[i] = src[i];
            continue;
        }
        s = fdecode((uint32_t)src[i], d->prec, &f);
        flag[i] = s;
        if (mc->kind == MAC_FP16) {   /* fp16 values are multiples of 2^-24 below 2^16 */
            ((int64_t *)dst)[i] = s ? 0 : (int64_t)f.m * ((int64_t)1 << (f.e + 24));
        } else {
            ((struct fop *)dst)[i] = f;
        }
    }
}

static bool setup(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                  struct mac *mc, struct rn_task_outcome *out)
{
    size_t ntile, nw;
    int32_t *tile, *w;
    mc->d = d;
    mc->kind = !d->p.fp ? MAC_INT : d->prec == RN_CNA_FP16 ? MAC_FP16 : MAC_FLOAT;
    mc->esz = mc->kind == MAC_INT ? 4 : 8;
    mc->hp = (size_t)(d->ho - 1) * d->sy + d->kh;
    mc->wp = (size_t)(d->wo - 1) * d->sx + d->kw;
    mc->taps = (size_t)d->kh * d->kw;
    mc->nk = d->dw ? 1 : (d->k < d->co_calc ? d->k : d->co_calc);
    ntile = mc->hp * mc->wp * d->ci;
    nw = mc->nk * mc->taps * d->ci;
    tile = rn_scratch(c, RN_BUF_INPUT, ntile * 4);
    w = rn_scratch(c, RN_BUF_WPACK, nw * 4);
    mc->tile = mc->kind == MAC_INT ? (void *)tile : rn_scratch(c, RN_BUF_WIDE, ntile * mc->esz);
    mc->w = mc->kind == MAC_INT ? (void *)w : rn_scratch(c, RN_BUF_GEMMW, nw * mc->esz);
    mc->patch = rn_scratch(c, RN_BUF_PATCH, mc->taps * d->ci * mc->esz);
    mc->tflag = rn_scratch(c, RN_BUF_SUM, ntile);
    mc->wflag = rn_scratch(c, RN_BUF_OPERAND, nw);
    mc->pflag = rn_scratch(c, RN_BUF_EW, mc->taps * d->ci);
    mc->wexp = rn_scratch(c, RN_BUF_CHAIN, mc->nk * sizeof(struct erange));
    if (!tile || !w || !mc->tile || !mc->w || !mc->patch || !mc->tflag || !mc->wflag ||
        !mc->pflag || !mc->wexp) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (!rn_cna_fetch_wide(c, m, d, tile, (uint32_t)mc->hp, (uint32_t)mc->wp, out) ||
        !rn_cna_weights_wide(c, m, d, w, (uint32_t)mc->nk, out)) {
        return false;
    }
    memset(mc->tflag, 0, ntile);
    memset(mc->wflag, 0, nw);
    memset(mc->pflag, 0, mc->taps * d->ci);
    if (mc->kind != MAC_INT) {
        decode(mc, tile, mc->tile, mc->tflag, ntile);
        decode(mc, w, mc->w, mc->wflag, nw);
    }
    for (size_t o = 0; mc->kind != MAC_INT && !d->dw && o < mc->nk; o++) {
        size_t n = mc->taps * d->ci;
        mc->wexp[o] = exp_range(mc->kind == MAC_FLOAT ? (const struct fop *)mc->w + o * n : NULL,
                                mc->wflag + o * n, n);
    }
    return true;
}

/* Copy the window of output pixel (y, x) into the patch: [kh·kw][ci]. */
static void gather(const struct mac *mc, uint32_t y, uint32_t x)
{
    const struct rn_conv *d = mc->d;
    size_t row = (size_t)d->kw * d->ci;
    for (uint32_t ky = 0; ky < d->kh; ky++) {
        size_t at = (((size_t)y * d->sy + ky) * mc->wp + (size_t)x * d->sx) * d->ci;
        memcpy((uint8_t *)mc->patch + ky * row * mc->esz, (const uint8_t *)mc->tile + at * mc->esz,
               row * mc->esz);
        if (mc->kind != MAC_INT) {
            memcpy(mc->pflag + ky * row, mc->tflag + at, row);
        }
    }
}

/* The raw accumulator's residue across a kick's tasks (quirk chain-int-acc, Q15), as for int8. */
struct cacc {
    int32_t *cur, *prev;
    uint32_t prev_pixels;
};

static bool cacc_setup(struct rn_core *c, const struct rn_conv *d, struct cacc *k,
                       struct rn_task_outcome *out)
{
    size_t pixels = (size_t)d->wo * d->ho;
    k->cur = k->prev = NULL;
    k->prev_pixels = 0;
    if (!d->raw_acc) {
        return true;
    }
    k->cur = rn_scratch(c, c->cacc_flip ? RN_BUF_CACC1 : RN_BUF_CACC0, pixels * 32 * 4);
    k->prev_pixels = d->cacc_chain ? c->cacc_pixels : 0;
    k->prev = k->prev_pixels ? rn_scratch(c, c->cacc_flip ? RN_BUF_CACC0 : RN_BUF_CACC1,
                                          (size_t)k->prev_pixels * 32 * 4) : NULL;
    if (!k->cur || (k->prev_pixels && !k->prev)) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    memset(k->cur, 0, pixels * 32 * 4);
    return true;
}

bool rn_mac_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d, void *obuf,
                 struct rn_task_outcome *out)
{
    struct mac mc;
    struct cacc k;
    int32_t *bias = NULL, *ew = NULL;
    size_t npix = (size_t)d->wo * d->ho, n;
    uint32_t cc;

    if (!setup(c, m, d, &mc, out) || !rn_fetch_bias(c, m, d, &bias, out) ||
        !cacc_setup(c, d, &k, out)) {
        return false;
    }
    if (d->ew_operand) {
        ew = rn_scratch(c, RN_BUF_EW32, (size_t)d->co_calc * npix * sizeof(int32_t));
        if (!ew || !rn_fetch_ew_wide(c, m, d, ew, out)) {
            out->error |= ew ? 0 : RN_ERR_DMA_READ;
            return false;
        }
    }
    n = d->dw ? mc.taps : mc.taps * d->ci;
    /* depthwise channels past DATAIN_CHANNEL, and kernels past WEIGHT_KERNELS, sum to 0 (Q11) */
    cc = d->dw ? (d->ci < d->co_calc ? d->ci : d->co_calc) : (uint32_t)mc.nk;
    for (uint32_t y = 0; y < d->ho && !c->cancel; y++) {
        for (uint32_t x = 0; x < d->wo; x++) {
            size_t pix = (size_t)y * d->wo + x;
            int64_t wsum = 0;
            struct erange pe = { 0, 0, false };
            bool ranged = mc.kind != MAC_INT && !d->dw;
            gather(&mc, y, x);
            if (ranged) {
                pe = exp_range(mc.kind == MAC_FLOAT ? mc.patch : NULL, mc.pflag, n);
            }
            if (mc.kind == MAC_INT && !d->dw) {
                for (size_t i = 0; i < n; i++) {
                    wsum += ((const int32_t *)mc.patch)[i];
                }
            }
            for (uint32_t o = 0; o < d->co_calc; o++) {
                size_t off = d->dw ? o : 0, wo_ = d->dw ? o : (size_t)o * n;
                size_t stride = d->dw ? d->ci : 1;
                const int32_t *e = ew ? &ew[(size_t)o * npix + pix] : NULL;
                uint8_t *dst = rn_obuf_at(obuf, d, o, pix);
                if (mc.kind == MAC_INT) {
                    int64_t acc = 0, ws = wsum, ev = e ? *e : 0;
                    if (o < cc) {
                        acc = dot_int((const int32_t *)mc.patch + off, (const int32_t *)mc.w + wo_,
                                      n, stride);
                    }
                    if (d->dw) {
                        ws = 0;
                        for (size_t t = 0; o < cc && t < mc.taps; t++) {
                            ws += ((const int32_t *)mc.patch)[t * d->ci + o];
                        }
                    }
                    if (k.cur) {   /* the raw accumulator (QD_EN 0): the CACC residue */
                        if (k.prev && pix < k.prev_pixels) {
                            acc = rn_sat32(acc + k.prev[pix * 32 + o % 32]);
                        }
                        k.cur[pix * 32 + o % 32] = (int32_t)acc;
                    }
                    rn_out_store(dst, rn_dpu_value(d, acc, ws, bias ? bias[o] : 0, e ? &ev : NULL),
                                 d->out_prec);
                } else {
                    float v = 0.0f;
                    if (o < cc) {
                        v = dot_float(&mc, (const uint8_t *)mc.patch + off * mc.esz,
                                      mc.pflag + off, (const uint8_t *)mc.w + wo_ * mc.esz,
                                      mc.wflag + wo_, n, stride, ranged ? &pe : NULL,
                                      ranged ? &mc.wexp[o] : NULL);
                    }
                    rn_float_store(dst, rn_dpu_float(d, NULL, v, bias ? (uint32_t)bias[o] : 0, e),
                                   d->out_prec);
                }
            }
        }
    }
    return true;
}
