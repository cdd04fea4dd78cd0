/*
 * The CORE MAC's vector path (HARDWARE-UNKNOWNS Q19; the rule is mac.c's scalar sums): the sums
 * of a dense convolution from the GEMM kernels (kernels.h), RN_MACVEC_PIXELS output pixels at a
 * time.
 *
 * Floats: an operand vector (a pixel's window, a kernel's weights) becomes an int32 row, each
 * element x · 2^-lo with lo the weight of the lowest mantissa bit of its smallest nonzero
 * element: an exact integer, below 2^bits with bits = mantissa bits + the span of its elements'
 * exponents; a vector with an inf or NaN, or bits > 31, is no row. A pair of rows whose bits and
 * the log2 of the products a K slice sums add to at most 63 sums exactly in the int64 of
 * rn_wgemm() (the slice: the whole K where the tile's and the kernels' windows allow, else 2^8
 * products or more), the slices add in 128 bits, and the exact sum is rounded once as
 * rn_round_f32() would. Every other pair is mac.c's to sum.
 * int16: the values as rows (sums below 2^46). int4: the values + 128 as the int8 GEMM's bytes
 * (sums below 2^27), less 128 times each kernel's weight sum.
 */
#include <string.h>

#include "conv.h"
#include "fp16.h"
#include "kernels.h"

/* The scans below want the vectoriser whatever the including build's -O level (QEMU uses -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

typedef __int128 i128;
typedef unsigned __int128 u128;

#define VEC_K 256      /* products per rn_wgemm() call and sum, at the least */
#define VEC_LOG_K 8

enum vkind { V_INT16, V_INT4, V_FLOAT, V_DW };

struct vwin {          /* a float vector as a row: value = row · 2^lo, |row| < 2^bits */
    int lo, bits;
    bool ok;           /* no inf or NaN, and bits <= 31 */
};

struct rn_macvec {
    enum vkind kind;
    int fb, lsb, lg;           /* fraction bits, lowest bit's exponent; log2 of the most
                                * products one slice sums */
    size_t n, kp, nk, nout;
    size_t ks, slices, slice_bytes;   /* K slices: ks elements (the last one fewer) */
    void *wpk;                 /* weights: rn_wgemm_pack()'s per K slice, or rn_gemm_pack()'s */
    void *rows;                /* RN_MACVEC_PIXELS rows of kp: int32, or bytes (int4) */
    void *acc;                 /* [pixel][nout]: int64 (rn_wgemm), int32 (rn_gemm_u8s8) */
    i128 *sum;                 /* [pixel][nk]: float sums over several slices */
    int32_t *wlo, *wbits;      /* floats: each kernel's row (wbits 64: no row) */
    int32_t *wsum;             /* int4: each kernel's weight sum (in wlo's place) */
    int64_t *out;              /* a pixel's nk sums (int4) or floats, as handed out */
    uint8_t *fits;             /* floats: which of them the kernels summed exactly */
    uint8_t *slow;             /* and which of those round_sum() rounds */
    struct vwin pw[RN_MACVEC_PIXELS];
    int64_t psum[RN_MACVEC_PIXELS];   /* integers: each pixel's window sum (CPEND) */
    /* depthwise: the weights [kh·kw][ci], each channel's sum and exponents, the block's sums */
    const int32_t *w;
    int room;                  /* the widest spread of product exponents summed exactly */
    double *dsum;
    int32_t *dlo, *dhi, *dsp;
    float *dout;
    uint8_t *dfits;
};

/* ---- floats as rows ---- */

/* 2^e as fp32, for -126 <= e <= 127 */
static float pow2f(int e)
{
    uint32_t bits = (uint32_t)(127 + e) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Biased exponents of the nonzero ones among n fp32 elements (subnormals count as 1), merged
 * into [*emin, *emax]; *special: an inf or NaN among them. */
static void scan(const int32_t *u, size_t n, int32_t *emin, int32_t *emax, int32_t *special)
{
    int32_t lo = *emin, hi = *emax, sp = *special;
    for (size_t i = 0; i < n; i++) {   /* written as plain min, max and or: it vectorises */
        int32_t a = u[i] & 0x7FFFFFFF, e = (a >> 23) + (a > 0 && a < 0x800000);
        int32_t el = a ? e : 0xFF;
        lo = el < lo ? el : lo;
        hi = e > hi ? e : hi;
        sp |= e == 0xFF;
    }
    *emin = lo, *emax = hi, *special = sp;
}

/* lsb: the weight of the precision's lowest bit (fp16 2^-24: its subnormals are fp32 normals) */
static struct vwin win_of(int32_t emin, int32_t emax, int32_t special, int fb, int lsb)
{
    struct vwin w = { 0, 0, !special };
    if (emin <= emax) {   /* else: no nonzero element, a row of zeros */
        w.lo = emin - 127 - fb > lsb ? emin - 127 - fb : lsb;
        w.bits = emax - 126 - w.lo;   /* |x| < 2^(emax - 126) */
        w.ok = w.ok && w.bits <= 31;
    }
    return w;
}

/* dst[i] = u[i] · 2^-lo: exact integers, the elements of a row's vector (below 2^31). In two
 * float products, exact both: 2^-lo may pass fp32's range, x · 2^min(-lo, 127) does not. */
static void to_row(const int32_t *u, size_t n, int lo, int32_t *dst)
{
    float s1 = pow2f(-lo < 127 ? -lo : 127), s2 = pow2f(-lo < 127 ? 0 : -lo - 127);
    for (size_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, &u[i], 4);
        dst[i] = (int32_t)(x * s1 * s2);
    }
}

/* s · 2^lsb rounded once to fp32, as rn_round_f32() does it */
static float round_sum(i128 s, int lsb)
{
    u128 u = s < 0 ? -(u128)s : (u128)s;
    uint64_t mag[2] = { (uint64_t)u, (uint64_t)(u >> 64) };
    if (u && !(u >> 63)) {
        int b = 64 - __builtin_clzll(mag[0]);
        if (b - 1 + lsb >= -126 && b + lsb <= 127) {
            /* a normal result: the conversion is the one rounding (to nearest even, 24 bits
             * from the leading one: what rn_round_f32 keeps above 2^-126), and 2^lsb only
             * moves the exponent */
            float f = (float)(int64_t)s;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            bits += (uint32_t)lsb << 23;
            memcpy(&f, &bits, 4);
            return f;
        }
    }
    return rn_round_f32(mag, 2, lsb, s < 0);
}

/* ---- setup: the weights, once per task ---- */

static size_t align16(size_t x)
{
    return (x + 15) & ~(size_t)15;
}

/* The weights of the int8 GEMM, zero-padded to kp, and their sums. */
static void setup_int4(struct rn_macvec *v, const int32_t *w, int8_t *w8)
{
    memset(w8, 0, v->nout * v->kp);
    for (size_t o = 0; o < v->nk; o++) {
        v->wsum[o] = 0;
        for (size_t i = 0; i < v->n; i++) {
            w8[o * v->kp + i] = (int8_t)w[o * v->n + i];
            v->wsum[o] += w[o * v->n + i];
        }
    }
    rn_gemm_pack(w8, v->nout, v->kp, v->wpk);
}

/*
 * Each kernel's window, and the K slice: as many products as the widest pixel row (no wider than
 * the tile's) with the widest kernel row can sum within 2^63 — the whole K, mostly — and never
 * fewer than VEC_K (pairs wider than that are the scalar sums').
 */
static size_t float_windows(struct rn_macvec *v, const int32_t *tile, size_t ntile,
                            const int32_t *w)
{
    int32_t emin = 0xFF, emax = 0, sp = 0;
    int wbits = 0, lg;
    struct vwin t;
    for (size_t o = 0; o < v->nk; o++) {
        int32_t lo = 0xFF, hi = 0, special = 0;
        scan(w + o * v->n, v->n, &lo, &hi, &special);
        struct vwin r = win_of(lo, hi, special, v->fb, v->lsb);
        v->wlo[o] = r.lo;
        v->wbits[o] = r.ok ? r.bits : 64;
        wbits = r.ok && r.bits > wbits ? r.bits : wbits;
    }
    scan(tile, ntile, &emin, &emax, &sp);   /* an inf or NaN: exponent 255, no room */
    t = win_of(emin, emax, 0, v->fb, v->lsb);
    lg = t.ok ? 63 - t.bits - wbits : 0;
    if (lg >= 16 || ((size_t)1 << lg) >= v->n) {
        return v->n;
    }
    return lg > VEC_LOG_K ? (size_t)1 << lg : VEC_K;
}

/* Each kernel's row, cut in K slices, each slice packed. */
static void setup_float(struct rn_macvec *v, const int32_t *w, int32_t *tmp)
{
    for (size_t sl = 0; sl < v->slices; sl++) {
        size_t k0 = sl * v->ks, kc = v->n - k0 < v->ks ? v->n - k0 : v->ks;
        for (size_t o = 0; o < v->nk; o++) {
            if (v->wbits[o] < 64) {
                to_row(w + o * v->n + k0, kc, v->wlo[o], tmp + o * kc);
            } else {
                memset(tmp + o * kc, 0, kc * 4);
            }
        }
        rn_wgemm_pack(tmp, v->nk, kc, (int32_t *)((uint8_t *)v->wpk + sl * v->slice_bytes));
    }
}

/* ---- depthwise (fp16): each channel's kh·kw products in a double ---- */

/*
 * A product of two fp16 values is exact in a double (11 x 11 bits), and so is the sum of the
 * taps' products when their exponents lie within 53 − 22 − log2(taps) of each other: its
 * conversion to fp32 is then the one rounding (from +0, an exact zero sums to +0). Per channel; a
 * channel with an inf or NaN, or a wider spread, is mac.c's.
 */
static bool dw_setup(struct rn_core *c, const struct rn_conv *d, struct rn_macvec *v,
                     const int32_t *w, struct rn_task_outcome *out)
{
    size_t cc = d->ci < d->co_calc ? d->ci : d->co_calc, taps = (size_t)d->kh * d->kw;
    uint8_t *b = rn_scratch(c, RN_BUF_VROWS, cc * (8 + 12) + RN_MACVEC_PIXELS * cc * 5 + 16);
    int lg = 0;
    if (!b) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    while (((size_t)1 << lg) < taps) {
        lg++;
    }
    v->nk = cc;
    v->w = w;
    v->room = 53 - 2 * (v->fb + 1) - lg;
    v->dsum = (double *)b;
    v->dlo = (int32_t *)(v->dsum + cc);
    v->dhi = v->dlo + cc;
    v->dsp = v->dhi + cc;
    v->dout = (float *)(v->dsp + cc);
    v->dfits = (uint8_t *)(v->dout + RN_MACVEC_PIXELS * cc);
    return true;
}

/* Pixel i's channels: its window's rows ky start at the tile's at[ky]. */
static void dw_pixel(struct rn_macvec *v, uint32_t i, const int32_t *tile, const size_t *at,
                     uint32_t kh, uint32_t kw, size_t ci)
{
    size_t cc = v->nk;
    double *restrict s = v->dsum;
    int32_t *restrict lo = v->dlo, *restrict hi = v->dhi, *restrict sp = v->dsp;
    float *f = v->dout + i * cc;
    uint8_t *fits = v->dfits + i * cc;
    for (size_t ch = 0; ch < cc; ch++) {
        s[ch] = 0.0, lo[ch] = 512, hi[ch] = 0, sp[ch] = 0;
    }
    for (uint32_t t = 0; t < kh * kw; t++) {   /* two loops without branches: they vectorise */
        const int32_t *x = tile + at[t / kw] + (size_t)(t % kw) * ci, *w = v->w + t * ci;
        for (size_t ch = 0; ch < cc; ch++) {
            float fx, fw;
            memcpy(&fx, &x[ch], 4);
            memcpy(&fw, &w[ch], 4);
            s[ch] += (double)fx * fw;
        }
        for (size_t ch = 0; ch < cc; ch++) {
            int32_t ax = x[ch] & 0x7FFFFFFF, aw = w[ch] & 0x7FFFFFFF;
            int32_t ex = ax >> 23, ew = aw >> 23, nz = (ax != 0) & (aw != 0);
            int32_t el = nz ? ex + ew : 512, eh = nz ? ex + ew : 0;
            lo[ch] = el < lo[ch] ? el : lo[ch];
            hi[ch] = eh > hi[ch] ? eh : hi[ch];
            sp[ch] |= (ex == 0xFF) | (ew == 0xFF);
        }
    }
    for (size_t ch = 0; ch < cc; ch++) {
        fits[ch] = (uint8_t)(!sp[ch] & (hi[ch] - lo[ch] <= v->room));
        f[ch] = (float)s[ch];
    }
}

struct rn_macvec *rn_macvec_setup(struct rn_core *c, const struct rn_conv *d,
                                  const int32_t *tile, size_t ntile, const int32_t *w,
                                  uint32_t nk, struct rn_task_outcome *out)
{
    struct rn_macvec *v;
    size_t n = (size_t)d->kh * d->kw * d->ci, head = align16(sizeof(*v));
    enum vkind kind = d->dw ? V_DW : d->p.fp ? V_FLOAT : d->prec == RN_CNA_INT4 ? V_INT4
                                                                                  : V_INT16;
    size_t kp = kind == V_INT4 ? (n + RN_KP_ALIGN - 1) / RN_KP_ALIGN * RN_KP_ALIGN : n;
    size_t nout = kind == V_INT4 ? (nk + 3) / 4 * 4 : nk;
    void *tmp;
    v = rn_scratch(c, RN_BUF_VSUM, head + (RN_MACVEC_PIXELS + 2) * nk * sizeof(i128));
    tmp = rn_scratch(c, RN_BUF_VTMP, nout * kp * 4);
    if (!v || !tmp) {
        out->error |= RN_ERR_DMA_READ;
        return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->kind = kind;
    v->fb = rn_float_fbits(d->prec);
    v->lsb = d->prec == RN_CNA_FP16 ? -24 : 1 - 127 - v->fb;
    v->n = n, v->kp = kp, v->nk = nk, v->nout = nout;
    if (kind == V_DW) {
        return dw_setup(c, d, v, w, out) ? v : NULL;
    }
    v->sum = (i128 *)((uint8_t *)v + head);
    v->wlo = (int32_t *)(v->sum + RN_MACVEC_PIXELS * nk);   /* nk entries of 16 bytes */
    v->wbits = v->wlo + nk;
    v->wsum = v->wlo;
    v->out = (int64_t *)(v->sum + (RN_MACVEC_PIXELS + 1) * nk);   /* and 8 more */
    v->fits = (uint8_t *)(v->out + nk);
    v->slow = v->fits + nk;
    v->ks = kind == V_FLOAT ? float_windows(v, tile, ntile, w) : n;   /* integers: exact */
    v->slices = (n + v->ks - 1) / v->ks;
    while (((size_t)1 << v->lg) < (v->ks < n ? v->ks : n)) {
        v->lg++;
    }
    v->slice_bytes = kind == V_INT4 ? rn_gemm_packed_size(nout, kp)
                   : rn_wgemm_packed_size(nk, v->ks);
    v->wpk = rn_scratch(c, RN_BUF_VPACK, v->slices * v->slice_bytes);
    v->rows = rn_scratch(c, RN_BUF_VROWS, RN_MACVEC_PIXELS * kp * 4);
    v->acc = rn_scratch(c, RN_BUF_ACC, RN_MACVEC_PIXELS * nout * 8);
    if (!v->wpk || !v->rows || !v->acc) {
        out->error |= RN_ERR_DMA_READ;
        return NULL;
    }
    memset(v->rows, 0, RN_MACVEC_PIXELS * kp * 4);   /* int4: the pad bytes past n */
    if (kind == V_INT4) {
        setup_int4(v, w, tmp);
    } else if (kind == V_INT16) {
        rn_wgemm_pack(w, nk, n, v->wpk);
    } else {
        setup_float(v, w, tmp);
    }
    return v;
}

/* ---- a block of pixels ---- */

/* Pixel i's window (kh rows of kw·ci elements at the tile's `at`) as its GEMM row. */
static void row_of(struct rn_macvec *v, uint32_t i, const int32_t *tile, const size_t *at,
                   uint32_t kh, size_t seg)
{
    int32_t emin = 0xFF, emax = 0, sp = 0;
    int64_t s = 0;
    for (uint32_t ky = 0; ky < kh; ky++) {
        const int32_t *src = tile + at[ky];
        if (v->kind == V_FLOAT) {
            scan(src, seg, &emin, &emax, &sp);
        } else if (v->kind == V_INT4) {
            uint8_t *dst = (uint8_t *)v->rows + i * v->kp + ky * seg;
            for (size_t j = 0; j < seg; j++) {
                dst[j] = (uint8_t)(src[j] + 128);
                s += src[j];
            }
        } else {
            memcpy((int32_t *)v->rows + i * v->kp + ky * seg, src, seg * 4);
            for (size_t j = 0; j < seg; j++) {
                s += src[j];
            }
        }
    }
    v->psum[i] = s;
    if (v->kind != V_FLOAT) {
        return;
    }
    v->pw[i] = win_of(emin, emax, sp, v->fb, v->lsb);
    for (uint32_t ky = 0; ky < kh; ky++) {
        int32_t *dst = (int32_t *)v->rows + i * v->kp + ky * seg;
        if (v->pw[i].ok) {
            to_row(tile + at[ky], seg, v->pw[i].lo, dst);
        } else {
            memset(dst, 0, seg * 4);
        }
    }
}

void rn_macvec_block(struct rn_macvec *v, const struct rn_conv *d, const int32_t *tile, size_t wp,
                     size_t p0, uint32_t np)
{
    size_t at[32];   /* kh <= 32 (WEIGHT_HEIGHT is 5 bits) */
    for (uint32_t i = 0; i < np; i++) {
        uint32_t y = (uint32_t)((p0 + i) / d->wo), x = (uint32_t)((p0 + i) % d->wo);
        for (uint32_t ky = 0; ky < d->kh; ky++) {
            at[ky] = rn_window_at(d, wp, y, x, ky);
        }
        if (v->kind == V_DW) {
            dw_pixel(v, i, tile, at, d->kh, d->kw, d->ci);
        } else {
            row_of(v, i, tile, at, d->kh, (size_t)d->kw * d->ci);
        }
    }
    if (v->kind == V_DW) {
        return;
    }
    if (v->kind == V_INT4) {
        rn_gemm_u8s8(v->rows, np, v->wpk, v->nout, v->kp, v->acc);
        return;
    }
    for (size_t sl = 0; sl < v->slices; sl++) {
        size_t k0 = sl * v->ks, kc = v->n - k0 < v->ks ? v->n - k0 : v->ks;
        const int64_t *acc = v->acc;
        rn_wgemm((const int32_t *)v->rows + k0, v->kp, np,
                 (const int32_t *)((const uint8_t *)v->wpk + sl * v->slice_bytes), v->nk, kc,
                 v->acc);
        for (size_t j = 0; v->slices > 1 && j < np * v->nk; j++) {
            v->sum[j] = (sl ? v->sum[j] : 0) + acc[j];
        }
    }
}

const int64_t *rn_macvec_sums(struct rn_macvec *v, uint32_t i)
{
    const int32_t *acc = (const int32_t *)v->acc + i * v->nout;
    if (v->kind != V_INT4) {
        return (const int64_t *)v->acc + i * v->nout;
    }
    for (size_t o = 0; o < v->nk; o++) {   /* undo the + 128 of the bytes */
        v->out[o] = acc[o] - 128 * (int64_t)v->wsum[o];
    }
    return v->out;
}

int64_t rn_macvec_wsum(const struct rn_macvec *v, uint32_t i)
{
    return v->psum[i];
}

/*
 * The common case without a branch: a nonzero int64 sum whose fp32 conversion (the one rounding)
 * scaled by 2^lsb is a normal number; the exponent test keeps one step of margin below, so that
 * the exact sum is at 2^-126 or more too. The rest (zero, i128 sums, the range's edges): after.
 */
const float *rn_macvec_floats(struct rn_macvec *v, uint32_t i, const uint8_t **fits)
{
    if (v->kind == V_DW) {
        *fits = v->dfits + i * v->nk;
        return v->dout + i * v->nk;
    }
    const struct vwin *a = &v->pw[i];
    const int64_t *acc = (const int64_t *)v->acc + i * v->nk;
    int room = a->ok ? 63 - a->bits - v->lg : -1;   /* the widest kernel row that fits */
    uint32_t *u = (uint32_t *)v->out;
    float *f = (float *)v->out;
    for (size_t o = 0; o < v->nk; o++) {
        int64_t s = v->slices > 1 ? 0 : acc[o];
        int lsb = a->lo + v->wlo[o];
        float x = (float)s;
        uint32_t b;
        memcpy(&b, &x, 4);
        int e = (int)((b >> 23) & 0xFF) + lsb;
        v->fits[o] = v->wbits[o] <= room;
        u[o] = b + ((uint32_t)lsb << 23);
        v->slow[o] = v->fits[o] && (v->slices > 1 || s == 0 || e < 2 || e > 254);
    }
    for (size_t o = 0; o < v->nk; o++) {
        if (v->slow[o]) {
            size_t j = i * v->nk + o;
            f[o] = round_sum(v->slices > 1 ? v->sum[j] : acc[o], a->lo + v->wlo[o]);
        }
    }
    *fits = v->fits;
    return f;
}
