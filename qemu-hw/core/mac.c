/*
 * CORE MAC of the precisions other than int8 (HARDWARE-UNKNOWNS Q19), and the DPU after it.
 * Integers (int4, int16) multiply and sum exactly in 64 bits. Floats (fp16, bf16, tf32 — tf32
 * operands first lose their mantissa's low 13 bits, to nearest even) multiply exactly and sum
 * exactly, and the sum is rounded once to fp32, to nearest even: the model's reading of the
 * NVDLA-style wide accumulator (no measurement separates it from an fp32 adder tree). The scalar
 * sums here are the rule: a 64- or 128-bit fixed point when the terms' exponents allow it (fp16
 * always fits 128 bits: its products are multiples of 2^-48 below 2^32), else a 640-bit one. The
 * vector path (mac-vec.c) gets the same sums of a convolution from the GEMM kernels wherever it
 * can show them exact, and leaves the others to these.
 */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "fp16.h"

enum mac_kind { MAC_INT, MAC_FLOAT };

typedef __int128 i128;
typedef unsigned __int128 u128;

/* A finite float operand m·2^e; flags: 0 finite, 1 +inf, 2 -inf, 3 NaN. */
struct fop {
    int32_t m, e;
};

enum { FIN = 0, PINF = 1, NINF = 2, FNAN = 3 };

/* Raw float elements to their fp32 bits, in place: exact, every fp16, bf16 and tf32 value is an
 * fp32 one. fp16 without branches, so that it vectorises: a matmul's tile is as many elements as
 * its MACs over the output width. */
RN_VECTORISE static void to_f32(int32_t *x, size_t n, uint32_t prec)
{
    if (prec == RN_CNA_BF16) {
        for (size_t i = 0; i < n; i++) {
            x[i] = (int32_t)((uint32_t)x[i] << 16);
        }
    } else if (prec == RN_CNA_TF32) {   /* rounded to 10 bits */
        for (size_t i = 0; i < n; i++) {
            x[i] = (int32_t)rn_tf32_round((uint32_t)x[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t r = (uint32_t)x[i], e = (r >> 10) & 0x1F, m = r & 0x3FF, v;
            uint32_t normal = 0u - (e != 0), inf = 0u - (e == 0x1F);
            float sub = (float)(int32_t)m * 0x1p-24f;   /* m · 2^-24, exactly */
            memcpy(&v, &sub, 4);
            v = (((e + 112) << 23 | m << 13) & normal) | (v & ~normal);
            v = ((0x7F800000u | m << 13) & inf) | (v & ~inf);
            x[i] = (int32_t)((r & 0x8000) << 16 | v);
        }
    }
}

/* An element's fp32 bits u as m·2^e (or a special), m of fb + 1 bits: the precision's. */
static uint8_t fop_of(uint32_t u, int fb, struct fop *f)
{
    uint32_t a = u & 0x7FFFFFFF, ex = a >> 23, sh = 23 - (uint32_t)fb;
    uint32_t m = ((a & 0x7FFFFF) | (ex ? 0x800000u : 0)) >> sh;   /* the low bits are 0 */
    if (ex == 0xFF) {
        f->m = 0, f->e = 0;
        return (a & 0x7FFFFF) ? FNAN : u >> 31 ? NINF : PINF;
    }
    f->m = u >> 31 ? -(int32_t)m : (int32_t)m;
    f->e = (ex ? (int)ex : 1) - 150 + (int)sh;
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
                         const uint8_t *fb, size_t n, size_t stride)
{
    bool pos = false, neg = false;
    for (size_t i = 0, k = 0; i < n; i++, k += stride) {
        uint8_t sa = fa[k], sb = fb[k];
        bool za = !sa && a[k].m == 0, zb = !sb && b[k].m == 0;
        bool na = sa == NINF || (!sa && a[k].m < 0), nb = sb == NINF || (!sb && b[k].m < 0);
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
 * the exponent range of its nonzero finite elements (lo > hi: none).
 */
struct erange {
    int lo, hi;
    bool special;
};

#define ERANGE_NONE { 1 << 20, -(1 << 20), false }

/* r widened by the n elements f[k], flag[k], k = i·stride */
static void exp_range(struct erange *r, const struct fop *f, const uint8_t *flag, size_t n,
                      size_t stride)
{
    int lo = r->lo, hi = r->hi;
    bool special = r->special;
    for (size_t i = 0, k = 0; i < n; i++, k += stride) {
        special |= flag[k] != 0;
        lo = f[k].m && f[k].e < lo ? f[k].e : lo;
        hi = f[k].m && f[k].e > hi ? f[k].e : hi;
    }
    r->lo = lo, r->hi = hi, r->special = special;
}

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
 * of the operands (conv), or NULL (depthwise): then they are scanned here. A sum whose terms all
 * lie within 2^24 (2^88) of each other takes a 64-bit (128-bit) fixed point instead of the
 * 640-bit one: the same exact value, faster.
 */
static float dot_float(const struct fop *pa, const uint8_t *fa, const struct fop *pb,
                       const uint8_t *fb, size_t n, size_t stride, const struct erange *ea,
                       const struct erange *eb)
{
    struct erange ra = ERANGE_NONE, rb = ERANGE_NONE;
    int lo, span;
    if (!ea || !eb) {
        exp_range(&ra, pa, fa, n, stride);
        exp_range(&rb, pb, fb, n, stride);
        ea = &ra, eb = &rb;
    }
    if (ea->special || eb->special) {
        return special_dot(pa, fa, pb, fb, n, stride);
    }
    if (ea->lo > ea->hi || eb->lo > eb->hi) {
        return 0.0f;   /* every product is zero */
    }
    lo = ea->lo + eb->lo;
    span = ea->hi + eb->hi - lo;
    if (span <= 24) {
        /* |products| < 2^(22 + span) · 2^lo, 2^16 of them: below 2^62 */
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
    if (span <= 88) {
        /* |products| < 2^(22 + span) · 2^lo, 2^16 of them: below 2^126 */
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
    uint64_t acc[ACC_LIMBS] = { 0 };
    for (size_t i = 0, k = 0; i < n; i++, k += stride) {
        int64_t m = (int64_t)pa[k].m * pb[k].m;
        if (m) {
            acc_add(acc, m, pa[k].e + pb[k].e);
        }
    }
    return acc_round(acc);
}

struct mac {
    const struct rn_conv *d;
    enum mac_kind kind;
    int fb;                      /* floats: fraction bits of the precision */
    int32_t *tile;               /* [hp][wp][ci]: integer values, or the floats' fp32 bits */
    int32_t *w;                  /* [nk][kh·kw·ci] (depthwise [kh·kw][ci]), the same forms */
    struct fop *wf, *patch;      /* floats: the weights, and one pixel's window, as m·2^e */
    int32_t *ipatch;             /* integers: one pixel's window */
    uint8_t *wflag, *pflag;
    struct erange *wexp;         /* float conv: each kernel's specials and exponent range */
    uint8_t *wready;             /* floats: kernel o's wf, wflag, wexp are decoded */
    size_t hp, wp, taps, nk;
};

static bool setup(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                  struct mac *mc, struct rn_task_outcome *out)
{
    size_t ntile, nw, np;
    mc->d = d;
    mc->kind = d->p.fp ? MAC_FLOAT : MAC_INT;
    mc->fb = rn_float_fbits(d->prec);
    mc->hp = (size_t)(d->ho - 1) * d->sy + d->kh;
    mc->wp = (size_t)(d->wo - 1) * d->sx + d->kw;
    mc->taps = (size_t)d->kh * d->kw;
    mc->nk = d->dw ? 1 : (d->k < d->co_calc ? d->k : d->co_calc);
    ntile = mc->hp * mc->wp * d->ci;
    nw = mc->nk * mc->taps * d->ci;
    np = mc->taps * d->ci;
    mc->tile = rn_scratch(c, RN_BUF_INPUT, ntile * 4);
    mc->w = rn_scratch(c, RN_BUF_WPACK, nw * 4);
    mc->wf = rn_scratch(c, RN_BUF_GEMMW, nw * sizeof(struct fop));
    mc->patch = rn_scratch(c, RN_BUF_PATCH, np * sizeof(struct fop));
    mc->ipatch = (int32_t *)mc->patch;
    mc->wflag = rn_scratch(c, RN_BUF_OPERAND, nw);
    mc->pflag = rn_scratch(c, RN_BUF_EW, np);
    mc->wexp = rn_scratch(c, RN_BUF_CHAIN, mc->nk * (sizeof(struct erange) + 1));
    if (!mc->tile || !mc->w || !mc->wf || !mc->patch || !mc->wflag || !mc->pflag || !mc->wexp) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (!rn_cna_fetch_wide(c, m, d, mc->tile, (uint32_t)mc->hp, (uint32_t)mc->wp, out) ||
        !rn_cna_weights_wide(c, m, d, mc->w, (uint32_t)mc->nk, out)) {
        return false;
    }
    mc->wready = (uint8_t *)(mc->wexp + mc->nk);
    memset(mc->wready, 0, mc->nk);
    if (mc->kind == MAC_INT) {
        return true;
    }
    /* up to 32 M elements each: a cancel check between them */
    to_f32(mc->tile, ntile, d->prec);
    if (rn_cancelled(c)) {
        return false;
    }
    to_f32(mc->w, nw, d->prec);
    return !rn_cancelled(c);
}

/* Kernel o's weights as the scalar sums take them (m·2^e, range), decoded on first use: the
 * vector path seldom needs them. */
static void wrow(struct mac *mc, size_t o)
{
    size_t n = mc->taps * mc->d->ci, at = o * n;
    if (mc->wready[o]) {
        return;
    }
    for (size_t i = at; i < at + n; i++) {
        mc->wflag[i] = fop_of((uint32_t)mc->w[i], mc->fb, &mc->wf[i]);
    }
    mc->wexp[o] = (struct erange)ERANGE_NONE;
    exp_range(&mc->wexp[o], mc->wf + at, mc->wflag + at, n, 1);
    mc->wready[o] = 1;
}

/* Copy the window of output pixel (y, x) into the patch: [kh·kw][ci]. */
static void gather(const struct mac *mc, uint32_t y, uint32_t x)
{
    const struct rn_conv *d = mc->d;
    size_t row = (size_t)d->kw * d->ci;
    for (uint32_t ky = 0; ky < d->kh; ky++) {
        const int32_t *src = mc->tile + rn_window_at(d, mc->wp, y, x, ky);
        if (mc->kind == MAC_INT) {
            memcpy(mc->ipatch + ky * row, src, row * 4);
            continue;
        }
        for (size_t j = 0; j < row; j++) {
            mc->pflag[ky * row + j] = fop_of((uint32_t)src[j], mc->fb, &mc->patch[ky * row + j]);
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

/* What the outputs of a task need besides the MAC. */
struct post {
    int32_t *bias, *ew;
    struct cacc k;
    size_t npix;
    uint32_t cc;   /* computed channels with a sum: later ones sum to 0 (Q11) */
};

/* Integer output o of pixel pix at dst: the raw accumulator's residue, the DPU, the store. */
static void out_int(const struct rn_conv *d, const struct post *q, uint8_t *dst, size_t pix,
                    uint32_t o, int64_t acc, int64_t ws)
{
    const int32_t *e = q->ew ? &q->ew[(size_t)o * q->npix + pix] : NULL;
    int64_t ev = e ? *e : 0;
    if (q->k.cur) {   /* the raw accumulator (QD_EN 0): the CACC residue */
        if (q->k.prev && pix < q->k.prev_pixels) {
            acc = rn_sat32(acc + q->k.prev[pix * 32 + o % 32]);
        }
        q->k.cur[pix * 32 + o % 32] = (int32_t)acc;
    }
    rn_out_store(dst, rn_dpu_value(d, acc, ws, q->bias ? q->bias[o] : 0, e ? &ev : NULL),
                 d->out_prec);
}

static void out_float(const struct rn_conv *d, const struct post *q, uint8_t *dst, size_t pix,
                      uint32_t o, float v)
{
    const int32_t *e = q->ew ? &q->ew[(size_t)o * q->npix + pix] : NULL;
    rn_float_store(dst, rn_dpu_float(d, NULL, v, q->bias ? (uint32_t)q->bias[o] : 0, e),
                   d->out_prec);
}

/*
 * Output pixel (y, x): every channel. vec: the vector path, its block holding the pixel as the
 * i-th, or NULL; it gives every integer sum, and the float sums it can show exact.
 */
static bool pixel(struct rn_core *c, struct mac *mc, struct rn_macvec *vec,
                  const struct post *q, void *obuf, uint32_t y, uint32_t x, uint32_t i)
{
    const struct rn_conv *d = mc->d;
    size_t pix = (size_t)y * d->wo + x, n = d->dw ? mc->taps : mc->taps * d->ci;
    size_t stride = d->dw ? d->ci : 1;
    bool gathered = false;
    struct erange pe = ERANGE_NONE;
    int64_t wsum = 0;
    const int64_t *vsum = vec && mc->kind == MAC_INT ? rn_macvec_sums(vec, i) : NULL;
    const uint8_t *fits = NULL;
    const float *vf = vec && mc->kind == MAC_FLOAT ? rn_macvec_floats(vec, i, &fits) : NULL;
    uint8_t *dst = rn_obuf_at(obuf, d, 0, pix);   /* output o: lane o % C2 of surface o / C2 */
    uint32_t c2 = rn_c2o(d), eb = d->out_bytes;    /* (the stores below may alias d) */
    for (uint32_t o = 0, lane = 0; o < d->co_calc; o++, dst += eb) {
        size_t off = d->dw ? o : 0, wo_ = d->dw ? o : (size_t)o * n;
        /* a scalar dot product: up to 2^16 terms, in 640-bit arithmetic at worst */
        if (o % 16 == 0 && rn_cancelled(c)) {
            return false;
        }
        if (lane++ == c2) {
            lane = 1;
            dst += q->npix * 16 - 16;
        }
        if (vsum) {
            out_int(d, q, dst, pix, o, o < q->cc ? vsum[o] : 0, rn_macvec_wsum(vec, i));
            continue;
        }
        if (o >= q->cc || (vf && fits[o])) {
            out_float(d, q, dst, pix, o, o < q->cc ? vf[o] : 0.0f);
            continue;
        }
        if (!gathered) {
            gather(mc, y, x);
            if (mc->kind == MAC_FLOAT && !d->dw) {
                exp_range(&pe, mc->patch, mc->pflag, n, 1);
            }
            for (size_t t = 0; mc->kind == MAC_INT && !d->dw && t < n; t++) {
                wsum += mc->ipatch[t];
            }
            gathered = true;
        }
        if (mc->kind == MAC_INT) {   /* the scalar integer sums (tests) */
            int64_t ws = d->dw ? 0 : wsum;
            for (size_t t = 0; d->dw && t < n; t++) {   /* the channel's window */
                ws += mc->ipatch[t * d->ci + o];
            }
            out_int(d, q, dst, pix, o, dot_int(mc->ipatch + off, mc->w + wo_, n, stride), ws);
        } else {
            wrow(mc, d->dw ? 0 : o);
            out_float(d, q, dst, pix, o,
                      dot_float(mc->patch + off, mc->pflag + off, mc->wf + wo_, mc->wflag + wo_,
                                n, stride, d->dw ? NULL : &pe, d->dw ? NULL : &mc->wexp[o]));
        }
    }
    return true;
}

bool rn_mac_scalar_only;

bool rn_mac_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d, void *obuf,
                 struct rn_task_outcome *out)
{
    struct mac mc;
    struct rn_macvec *vec = NULL;
    struct post q = { NULL, NULL, { NULL, NULL, 0 }, (size_t)d->wo * d->ho, 0 };
    size_t block;

    if (!setup(c, m, d, &mc, out) || !rn_fetch_bias(c, m, d, &q.bias, out) ||
        !cacc_setup(c, d, &q.k, out)) {
        return false;
    }
    if ((!d->dw || d->p.fp) && !rn_mac_scalar_only) {   /* depthwise: fp16 only (Q19) */
        vec = rn_macvec_setup(c, d, mc.tile, mc.hp * mc.wp * d->ci, mc.w, (uint32_t)mc.nk,
                              out);
        if (!vec || rn_cancelled(c)) {
            return false;
        }
    }
    if (d->ew_operand) {
        q.ew = rn_scratch(c, RN_BUF_EW32, (size_t)d->co_calc * q.npix * sizeof(int32_t));
        if (!q.ew || !rn_fetch_ew_wide(c, m, d, q.ew, out)) {
            out->error |= q.ew ? 0 : RN_ERR_DMA_READ;
            return false;
        }
    }
    /* depthwise channels past DATAIN_CHANNEL, and kernels past WEIGHT_KERNELS, sum to 0 (Q11) */
    q.cc = d->dw ? (d->ci < d->co_calc ? d->ci : d->co_calc) : (uint32_t)mc.nk;
    /* blocks of output pixels in rows of Wo (a row-major matmul has Wo 1); fewer than
     * RN_MACVEC_PIXELS when their MACs pass 2^26, so that a cancel is seen within ~10 ms */
    block = vec ? (1u << 26) / ((uint64_t)mc.nk * mc.taps * d->ci + 1) : 1;
    block = block < 1 ? 1 : block > RN_MACVEC_PIXELS ? RN_MACVEC_PIXELS : block;
    for (size_t p0 = 0; p0 < q.npix; p0 += block) {
        uint32_t np = q.npix - p0 < block ? (uint32_t)(q.npix - p0) : (uint32_t)block;
        if (rn_cancelled(c)) {
            return false;
        }
        if (vec) {
            rn_macvec_block(vec, d, mc.tile, mc.wp, p0, np);
        }
        for (uint32_t i = 0; i < np; i++) {
            if (!pixel(c, &mc, vec, &q, obuf, (uint32_t)((p0 + i) / d->wo),
                       (uint32_t)((p0 + i) % d->wo), i)) {
                return false;
            }
        }
    }
    return true;
}
