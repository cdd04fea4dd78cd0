/*
 * The arm64 kernels, in NEON intrinsics: the baseline (ASIMD) path, and GEMMs on the dot
 * product instructions, SDOT (FEAT_DotProd) and SUDOT (FEAT_I8MM), which carry their own targets
 * and are chosen at run time (getauxval on Linux, sysctl on macOS). Compiled elsewhere, the file
 * is empty.
 */
#include "kernels-impl.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/*
 * GCC's arm_neon.h defines the dot products for any -march (under their own target pragmas), so
 * a target attribute is enough; clang's, before it did the same, only when -march has them.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define HAVE_DOT 1
#define DOT_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#if __GNUC__ >= 10
#define HAVE_I8MM 1
#define I8MM_TARGET __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#endif
#else
#ifdef __ARM_FEATURE_DOTPROD
#define HAVE_DOT 1
#define DOT_TARGET
#endif
#ifdef __ARM_FEATURE_MATMUL_INT8
#define HAVE_I8MM 1
#define I8MM_TARGET
#endif
#endif

#define INLINE static inline __attribute__((always_inline))

/* These loops need full unrolling whatever the including build's -O level (QEMU uses -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/* ---- baseline GEMM: int16 multiply-accumulate by lane ---- */

/*
 * Weights as int16 [o / 8][k][o % 8]; inputs widened 8 bytes at a time. One step is 4 pixels x
 * 16 outputs in 16 accumulators: per k, 16 SMLAL (by lane) of 4 outputs each.
 */
static size_t mlal_packed_size(size_t nout_pad, size_t kp)
{
    return (nout_pad + 7) / 8 * 8 * kp * sizeof(int16_t);
}

/* the int16 weights, ow added to each row's first kreal (rn_gemm_pack_fold) */
static void mlal_pack_fold(const int8_t *w, size_t nout_pad, size_t kp, size_t kreal, int32_t ow,
                           int8_t *packed)
{
    size_t nob = (nout_pad + 7) / 8;
    for (size_t ob = 0; ob < nob; ob++) {
        for (size_t k = 0; k < kp; k++) {
            int16_t v[8];
            for (size_t l = 0; l < 8; l++) {
                size_t o = ob * 8 + l;
                v[l] = o < nout_pad ? (int16_t)(w[o * kp + k] + (k < kreal ? ow : 0)) : 0;
            }
            memcpy(packed + (ob * kp + k) * 16, v, 16);
        }
    }
}

static void mlal_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    mlal_pack_fold(w, nout_pad, kp, 0, 0, packed);
}

/* 8 input bytes (n of them, the rest 0) as int16 */
INLINE int16x8_t widen8(const uint8_t *p, size_t n)
{
    uint8_t b[8] = { 0 };
    if (n >= 8) {
        return vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p)));
    }
    memcpy(b, p, n);
    return vreinterpretq_s16_u16(vmovl_u8(vld1_u8(b)));
}

#define MLAL4(i, x, l)                                                                        \
    c##i##0 = vmlal_laneq_s16(c##i##0, vget_low_s16(b0), x, l);                               \
    c##i##1 = vmlal_high_laneq_s16(c##i##1, b0, x, l);                                        \
    c##i##2 = vmlal_laneq_s16(c##i##2, vget_low_s16(b1), x, l);                               \
    c##i##3 = vmlal_high_laneq_s16(c##i##3, b1, x, l)
#define MLAL_K(l)                                                                             \
    if (l < kn) {                                                                             \
        int16x8_t b0 = vld1q_s16((const int16_t *)(const void *)(w0 + (k + l) * 16));         \
        int16x8_t b1 = vld1q_s16((const int16_t *)(const void *)(w1 + (k + l) * 16));         \
        MLAL4(0, x0, l);                                                                      \
        MLAL4(1, x1, l);                                                                      \
        MLAL4(2, x2, l);                                                                      \
        MLAL4(3, x3, l);                                                                      \
    }

/* dst[0, n) = the n outputs of 4 accumulators (n % 4 == 0); add: += */
INLINE void put16(int32_t *dst, size_t n, int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d)
{
    int32x4_t v[4] = { a, b, c, d };
    for (size_t j = 0; j < 4 && 4 * j < n; j++) {
        vst1q_s32(dst + 4 * j, v[j]);
    }
}

static void gemm_mlal(const uint8_t *a, size_t np, const int8_t *wp, size_t no, size_t kp,
                      int32_t *acc)
{
    size_t nob = (no + 7) / 8;
    for (size_t p0 = 0; p0 < np; p0 += 4) {
        size_t pn = np - p0 < 4 ? np - p0 : 4;
        const uint8_t *r0 = a + p0 * kp, *r1 = pn > 1 ? r0 + kp : r0;
        const uint8_t *r2 = pn > 2 ? r0 + 2 * kp : r0, *r3 = pn > 3 ? r0 + 3 * kp : r0;
        for (size_t ob = 0; ob < nob; ob += 2) {
            const int8_t *w0 = wp + ob * kp * 16, *w1 = ob + 1 < nob ? w0 + kp * 16 : w0;
            int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00;
            int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            int32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
            int32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
            for (size_t k = 0; k < kp; k += 8) {
                size_t kn = kp - k < 8 ? kp - k : 8;
                int16x8_t x0 = widen8(r0 + k, kn), x1 = widen8(r1 + k, kn);
                int16x8_t x2 = widen8(r2 + k, kn), x3 = widen8(r3 + k, kn);
                MLAL_K(0) MLAL_K(1) MLAL_K(2) MLAL_K(3) MLAL_K(4) MLAL_K(5) MLAL_K(6) MLAL_K(7)
            }
            size_t n = no - ob * 8 < 16 ? no - ob * 8 : 16;
            int32_t *dst = acc + p0 * no + ob * 8;
            put16(dst, n, c00, c01, c02, c03);
            if (pn > 1) {
                put16(dst + no, n, c10, c11, c12, c13);
            }
            if (pn > 2) {
                put16(dst + 2 * no, n, c20, c21, c22, c23);
            }
            if (pn > 3) {
                put16(dst + 3 * no, n, c30, c31, c32, c33);
            }
        }
    }
}

/* ---- GEMMs on the 4-byte dot products ---- */

/*
 * Weights as rn_dot16_pack lays them out, then (SDOT only) each output's weight sum. A step is
 * 4 pixels x 16 outputs in 16 accumulators: per 16 input bytes of each pixel, 4 groups of 4 by
 * lane, each 16 dot products of 4 outputs. SDOT is s8 x s8: it runs on input ^ 0x80 (the
 * original int8 input) and adds back 128 * (weight sum) per output; SUDOT is s8 x u8, exact.
 */
#define DOT4(i, x, g)                                                                         \
    c##i##0 = DOT_LANE(c##i##0, b0, x, g);                                                    \
    c##i##1 = DOT_LANE(c##i##1, b1, x, g);                                                    \
    c##i##2 = DOT_LANE(c##i##2, b2, x, g);                                                    \
    c##i##3 = DOT_LANE(c##i##3, b3, x, g)
#define DOT_GROUP(k, g)                                                                       \
    {                                                                                         \
        const int8_t *wg = w + ((k) + (g)) * 64;                                              \
        int8x16_t b0 = vld1q_s8(wg), b1 = vld1q_s8(wg + 16);                                  \
        int8x16_t b2 = vld1q_s8(wg + 32), b3 = vld1q_s8(wg + 48);                             \
        DOT4(0, x0, g);                                                                       \
        DOT4(1, x1, g);                                                                       \
        DOT4(2, x2, g);                                                                       \
        DOT4(3, x3, g);                                                                       \
    }

/* The whole GEMM, for DOT_LANE, X16 (16 input bytes), X4 (4 bytes in lane 0) and FIX(c, o). */
#define DOT_GEMM_BODY                                                                         \
    size_t nob = (no + 15) / 16, kg = kp / 4;                                                 \
    const int32_t *wsum = (const int32_t *)(const void *)(wp + rn_dot16_packed_size(no, kp)); \
    (void)wsum;                                                                               \
    for (size_t p0 = 0; p0 < np; p0 += 4) {                                                   \
        size_t pn = np - p0 < 4 ? np - p0 : 4;                                                \
        const uint8_t *r0 = a + p0 * kp, *r1 = pn > 1 ? r0 + kp : r0;                         \
        const uint8_t *r2 = pn > 2 ? r0 + 2 * kp : r0, *r3 = pn > 3 ? r0 + 3 * kp : r0;       \
        for (size_t ob = 0; ob < nob; ob++) {                                                 \
            const int8_t *w = wp + ob * kg * 64;                                              \
            int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00;                  \
            int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;                             \
            int32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;                             \
            int32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;                             \
            size_t k = 0;                                                                     \
            for (; k + 4 <= kg; k += 4) {                                                     \
                XTYPE x0 = X16(r0 + 4 * k), x1 = X16(r1 + 4 * k);                             \
                XTYPE x2 = X16(r2 + 4 * k), x3 = X16(r3 + 4 * k);                             \
                DOT_GROUP(k, 0) DOT_GROUP(k, 1) DOT_GROUP(k, 2) DOT_GROUP(k, 3)               \
            }                                                                                 \
            for (; k < kg; k++) {                                                             \
                XTYPE x0 = X4(r0 + 4 * k), x1 = X4(r1 + 4 * k);                               \
                XTYPE x2 = X4(r2 + 4 * k), x3 = X4(r3 + 4 * k);                               \
                DOT_GROUP(k, 0)                                                               \
            }                                                                                 \
            size_t o0 = ob * 16, n = no - o0 < 16 ? no - o0 : 16;                             \
            int32_t *dst = acc + p0 * no + o0;                                                \
            put16(dst, n, FIX(c00, o0), FIX(c01, o0 + 4), FIX(c02, o0 + 8), FIX(c03, o0 + 12)); \
            if (pn > 1) {                                                                     \
                put16(dst + no, n, FIX(c10, o0), FIX(c11, o0 + 4), FIX(c12, o0 + 8),          \
                      FIX(c13, o0 + 12));                                                     \
            }                                                                                 \
            if (pn > 2) {                                                                     \
                put16(dst + 2 * no, n, FIX(c20, o0), FIX(c21, o0 + 4), FIX(c22, o0 + 8),      \
                      FIX(c23, o0 + 12));                                                     \
            }                                                                                 \
            if (pn > 3) {                                                                     \
                put16(dst + 3 * no, n, FIX(c30, o0), FIX(c31, o0 + 4), FIX(c32, o0 + 8),      \
                      FIX(c33, o0 + 12));                                                     \
            }                                                                                 \
        }                                                                                     \
    }

INLINE uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#ifdef HAVE_DOT
/* Weights and, after them, 128 x each output's weight sum (outputs past nout_pad: 0). */
static size_t sdot_packed_size(size_t nout_pad, size_t kp)
{
    return rn_dot16_packed_size(nout_pad, kp) + (nout_pad + 15) / 16 * 16 * sizeof(int32_t);
}

static void sdot_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    size_t n16 = (nout_pad + 15) / 16 * 16;
    int8_t *sums = packed + rn_dot16_packed_size(nout_pad, kp);
    rn_dot16_pack(w, nout_pad, kp, packed);
    for (size_t o = 0; o < n16; o++) {
        int32_t s = 0;
        for (size_t i = 0; o < nout_pad && i < kp; i++) {
            s += w[o * kp + i];
        }
        s *= 128;
        memcpy(sums + o * sizeof(s), &s, sizeof(s));
    }
}

#define XTYPE int8x16_t
#define X16(p) vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)))
#define X4(p) vreinterpretq_s8_u32(veorq_u32(vdupq_n_u32(ld32(p)), vdupq_n_u32(0x80808080u)))
#define DOT_LANE(c, b, x, g) vdotq_laneq_s32(c, b, x, g)
#define FIX(c, o) vaddq_s32(c, vld1q_s32(wsum + (o)))
DOT_TARGET static void gemm_sdot(const uint8_t *a, size_t np, const int8_t *wp, size_t no,
                                 size_t kp, int32_t *acc)
{
    DOT_GEMM_BODY
}
#undef XTYPE
#undef X16
#undef X4
#undef DOT_LANE
#undef FIX
#endif

#ifdef HAVE_I8MM
#define XTYPE uint8x16_t
#define X16(p) vld1q_u8(p)
#define X4(p) vreinterpretq_u8_u32(vdupq_n_u32(ld32(p)))
#define DOT_LANE(c, b, x, g) vsudotq_laneq_s32(c, b, x, g)
#define FIX(c, o) (c)
I8MM_TARGET static void gemm_sudot(const uint8_t *a, size_t np, const int8_t *wp, size_t no,
                                   size_t kp, int32_t *acc)
{
    DOT_GEMM_BODY
}
#undef XTYPE
#undef X16
#undef X4
#undef DOT_LANE
#undef FIX
#endif

/* ---- depthwise and byte sums ---- */

/* 16 channels of input - 128 (u8 ^ 0x80 is u8 - 128 as a signed byte) */
INLINE int8x16_t in16(const uint8_t *s)
{
    return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(s), vdupq_n_u8(0x80)));
}

INLINE void add4(int32_t *d, int32x4_t v)
{
    vst1q_s32(d, vaddq_s32(vld1q_s32(d), v));
}

/* d[0, 16) += the int16 lanes of lo, hi */
INLINE void add16(int32_t *d, int16x8_t lo, int16x8_t hi)
{
    add4(d, vmovl_s16(vget_low_s16(lo)));
    add4(d + 4, vmovl_high_s16(lo));
    add4(d + 8, vmovl_s16(vget_low_s16(hi)));
    add4(d + 12, vmovl_high_s16(hi));
}

static void dw_neon(const uint8_t *s, const int8_t *w, int32_t *acc, int32_t *sum, size_t n)
{
    size_t c = 0;
    for (; c + 16 <= n; c += 16) {
        int8x16_t x = in16(s + c), wv = vld1q_s8(w + c);
        add16(acc + c, vmull_s8(vget_low_s8(x), vget_low_s8(wv)), vmull_high_s8(x, wv));
        add16(sum + c, vmovl_s8(vget_low_s8(x)), vmovl_high_s8(x));
    }
    for (; c < n; c++) {
        int32_t x = (int32_t)s[c] - 128;
        acc[c] += x * w[c];
        sum[c] += x;
    }
}

static void dw_pixel_neon(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                          const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n)
{
    size_t c = 0;
    if ((size_t)kh * kw <= 256) {   /* window sums in int16 */
        for (; c + 16 <= n; c += 16) {
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            int16x8_t s0 = vdupq_n_s16(0), s1 = s0;
            for (uint32_t ky = 0; ky < kh; ky++) {
                const uint8_t *sr = src + ky * row + c;
                const int8_t *wr = w + (size_t)ky * kw * wstride + c;
                for (uint32_t kx = 0; kx < kw; kx++) {
                    int8x16_t x = in16(sr + kx * col), wv = vld1q_s8(wr + kx * wstride);
                    int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(wv));
                    int16x8_t hi = vmull_high_s8(x, wv);
                    a0 = vaddw_s16(a0, vget_low_s16(lo));
                    a1 = vaddw_high_s16(a1, lo);
                    a2 = vaddw_s16(a2, vget_low_s16(hi));
                    a3 = vaddw_high_s16(a3, hi);
                    s0 = vaddw_s8(s0, vget_low_s8(x));
                    s1 = vaddw_high_s8(s1, x);
                }
            }
            add4(acc + c, a0);
            add4(acc + c + 4, a1);
            add4(acc + c + 8, a2);
            add4(acc + c + 12, a3);
            add16(sum + c, s0, s1);
        }
    }
    if (c < n) {
        for (uint32_t ky = 0; ky < kh; ky++) {
            for (uint32_t kx = 0; kx < kw; kx++) {
                dw_neon(src + ky * row + kx * col + c, w + ((size_t)ky * kw + kx) * wstride + c,
                        acc + c, sum + c, n - c);
            }
        }
    }
}

static uint32_t sum_neon(const uint8_t *p, size_t n)
{
    uint32x4_t s = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s = vpadalq_u16(s, vpaddlq_u8(vld1q_u8(p + i)));
    }
    uint32_t t = vaddvq_u32(s);
    for (; i < n; i++) {
        t += p[i];
    }
    return t;
}

static int32_t ssum_neon(const int8_t *p, size_t n)
{
    int32x4_t s = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s = vpadalq_s16(s, vpaddlq_s8(vld1q_s8(p + i)));
    }
    int32_t t = vaddvq_s32(s);
    for (; i < n; i++) {
        t += p[i];
    }
    return t;
}

/* ---- the DPU fast path, 2 lanes of int64 per register ---- */

struct rshift {
    int64x2_t nsh;    /* -sh: SSHL by a negative count is an arithmetic right shift */
    int64x2_t half;   /* 2^(sh - 1), less 1 for ties to even */
    bool up;
};

INLINE void rshift_init(struct rshift *r, uint32_t sh, bool up)
{
    r->nsh = vdupq_n_s64(-(int64_t)sh);
    r->half = vdupq_n_s64(((int64_t)1 << (sh - 1)) - !up);
    r->up = up;
}

/* round(x / 2^sh), as kernels-x86.c: (x + half [- 1 + bit sh of x]) >> sh; |x| < 2^62 */
INLINE int64x2_t rshift(int64x2_t x, const struct rshift *r)
{
    int64x2_t t = vaddq_s64(x, r->half);
    if (!r->up) {
        t = vaddq_s64(t, vandq_s64(vshlq_s64(x, r->nsh), vdupq_n_s64(1)));
    }
    return vshlq_s64(t, r->nsh);
}

INLINE int64x2_t clamp64(int64x2_t x, int64x2_t lo, int64x2_t hi)
{
    x = vbslq_s64(vcgtq_s64(lo, x), lo, x);
    return vbslq_s64(vcgtq_s64(x, hi), hi, x);
}

struct dpu_k {
    struct rshift tr, er, orr;
    int32x4_t ow, eoff;
    int32x2_t esc, osc;
    int64x2_t ooff, i32min, i32max, o8min, o8max;
};

/* The rule on 2 lanes: x = acc + ow * wsum (int64), b = bias, e = e + ew_offset (int32) */
INLINE int64x2_t dpu2(const struct rn_dpu_fast *f, const struct dpu_k *k, int64x2_t x,
                      int64x2_t b, int32x2_t e)
{
    if (f->trunc) {
        x = rshift(x, &k->tr);
    }
    x = clamp64(vaddq_s64(x, b), k->i32min, k->i32max);
    if (f->ew) {
        x = clamp64(vaddq_s64(x, rshift(vmull_s32(e, k->esc), &k->er)), k->i32min, k->i32max);
    }
    x = rshift(vmull_s32(vmovn_s64(x), k->osc), &k->orr);
    return clamp64(vaddq_s64(x, k->ooff), k->o8min, k->o8max);
}

/* 4 lanes, as int32 in [-128, 127] */
INLINE int32x4_t dpu4(const struct rn_dpu_fast *f, const struct dpu_k *k, const int32_t *acc,
                      const int32_t *bias, const int32_t *wsum, int32x4_t e)
{
    int32x4_t a = vld1q_s32(acc), w = vld1q_s32(wsum), b = vld1q_s32(bias);
    int64x2_t lo = vmlal_s32(vmovl_s32(vget_low_s32(a)), vget_low_s32(w), vget_low_s32(k->ow));
    int64x2_t hi = vmlal_high_s32(vmovl_high_s32(a), w, k->ow);
    e = vaddq_s32(e, k->eoff);
    lo = dpu2(f, k, lo, vmovl_s32(vget_low_s32(b)), vget_low_s32(e));
    hi = dpu2(f, k, hi, vmovl_high_s32(b), vget_high_s32(e));
    return vcombine_s32(vmovn_s64(lo), vmovn_s64(hi));
}

static void dpu_neon(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                     const int32_t *wsum, const int8_t *e, size_t es, int8_t *out, size_t os,
                     size_t n)
{
    struct dpu_k k;
    memset(&k, 0, sizeof(k));
    if (f->trunc) {
        rshift_init(&k.tr, f->trunc, f->trunc_half_up);
    }
    if (f->ew) {
        rshift_init(&k.er, f->ew_shift, false);
    }
    rshift_init(&k.orr, f->out_shift, false);
    k.ow = vdupq_n_s32(f->ow_op);
    k.eoff = vdupq_n_s32(f->ew ? f->ew_offset : 0);
    k.esc = vdup_n_s32(f->ew_scale);
    k.osc = vdup_n_s32(f->out_scale);
    k.ooff = vdupq_n_s64(f->out_offset);
    k.i32min = vdupq_n_s64(INT32_MIN);
    k.i32max = vdupq_n_s64(INT32_MAX);
    k.o8min = vdupq_n_s64(-128);
    k.o8max = vdupq_n_s64(127);
    for (size_t i = 0; i < n; i++, acc += 16, bias += 16, wsum += 16, e += es, out += os) {
        int8x16_t ev = vld1q_s8(e);
        int16x8_t elo = vmovl_s8(vget_low_s8(ev)), ehi = vmovl_high_s8(ev);
        int32x4_t r0 = dpu4(f, &k, acc, bias, wsum, vmovl_s16(vget_low_s16(elo)));
        int32x4_t r1 = dpu4(f, &k, acc + 4, bias + 4, wsum + 4, vmovl_high_s16(elo));
        int32x4_t r2 = dpu4(f, &k, acc + 8, bias + 8, wsum + 8, vmovl_s16(vget_low_s16(ehi)));
        int32x4_t r3 = dpu4(f, &k, acc + 12, bias + 12, wsum + 12, vmovl_high_s16(ehi));
        int16x8_t h0 = vcombine_s16(vmovn_s32(r0), vmovn_s32(r1));
        int16x8_t h1 = vcombine_s16(vmovn_s32(r2), vmovn_s32(r3));
        vst1q_s8(out, vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
    }
}

/* ---- the DPU fast path's narrow form in int32 lanes (rn_dpu_int_plan), for conv blocks ---- */

struct dpu_n {
    int32x4_t ow, vmin, vmax, osc, half1, nsh, ooff, tmask, thalf, ntsh;
    bool tr, up;
};

/* CLIP_TRUNCATE of exact int32 x, trunc 1..30 (kernels-x86.c trunc8) */
INLINE int32x4_t trunc4(const struct dpu_n *k, int32x4_t x)
{
    int32x4_t q = vshlq_s32(x, k->ntsh), r = vandq_s32(x, k->tmask);
    uint32x4_t gt = vcgtq_s32(r, k->thalf), eq = vceqq_s32(r, k->thalf);
    uint32x4_t tie = k->up ? eq : vandq_u32(eq, vtstq_s32(q, vdupq_n_s32(1)));
    return vsubq_s32(q, vreinterpretq_s32_u32(vorrq_u32(gt, tie)));   /* masks are -1 */
}

/* bias + truncation, clamp to [-V, V], out_offset + RNE(v * out_scale >> out_shift) */
INLINE int32x4_t dpu4_n(const struct dpu_n *k, int32x4_t x, const int32_t *bias)
{
    int32x4_t v = vaddq_s32(k->tr ? trunc4(k, x) : x, vld1q_s32(bias));
    int32x4_t y = vmulq_s32(vminq_s32(vmaxq_s32(v, k->vmin), k->vmax), k->osc);
    int32x4_t bit = vandq_s32(vshlq_s32(y, k->nsh), vdupq_n_s32(1));
    return vaddq_s32(vshlq_s32(vaddq_s32(vaddq_s32(y, k->half1), bit), k->nsh), k->ooff);
}

static bool dpu_n_setup(struct dpu_n *k, const struct rn_dpu_fast *f)
{
    struct rn_dpu_int p;
    if (!rn_dpu_int_plan(f, &p) || !p.narrow) {
        return false;
    }
    k->ow = vdupq_n_s32(f->ow_op);
    k->vmin = vdupq_n_s32(-p.v);
    k->vmax = vdupq_n_s32(p.v);
    k->osc = vdupq_n_s32(f->out_scale);
    k->half1 = vdupq_n_s32((int32_t)((INT64_C(1) << (f->out_shift - 1)) - 1));
    k->nsh = vdupq_n_s32(-(int32_t)f->out_shift);   /* SSHL by a negative count: >> */
    k->ooff = vdupq_n_s32(f->out_offset);
    k->tr = f->trunc != 0;
    k->up = f->trunc_half_up;
    k->tmask = vdupq_n_s32((int32_t)((1u << f->trunc) - 1));
    k->thalf = vdupq_n_s32(f->trunc ? (int32_t)(1u << (f->trunc - 1)) : 0);
    k->ntsh = vdupq_n_s32(-(int32_t)f->trunc);
    return true;
}

/* rn_dpu_conv in the narrow form, where the plan allows it (else false) */
static bool dpu_conv_neon(const struct rn_dpu_fast *f, const int32_t *acc, size_t acc_stride,
                          const int32_t *wsum_w, const int32_t *bias, const int32_t *s,
                          int8_t *out, size_t os, size_t natoms, size_t npix)
{
    struct dpu_n k;
    if (!dpu_n_setup(&k, f)) {
        return false;
    }
    for (size_t i = 0; i < npix; i++) {
        int32x4_t ows = vdupq_n_s32((int32_t)((int64_t)f->ow_op * s[i]));   /* fits32 */
        const int32_t *a = acc + i * acc_stride;
        for (size_t j = 0; j < natoms; j++) {
            int16x4_t h[4];
            for (int q = 0; q < 4; q++) {
                size_t o = 16 * j + 4 * q;
                int32x4_t x = vsubq_s32(vld1q_s32(a + o), vshlq_n_s32(vld1q_s32(wsum_w + o), 7));
                h[q] = vqmovn_s32(dpu4_n(&k, vaddq_s32(x, ows), bias + o));
            }
            /* saturating narrows: int16, then int8, is the rule's clamp to [-128, 127] */
            vst1q_s8(out + j * os + i * 16,
                     vcombine_s8(vqmovn_s16(vcombine_s16(h[0], h[1])),
                                 vqmovn_s16(vcombine_s16(h[2], h[3]))));
        }
    }
    return true;
}

/* ---- depthwise with CPEND folded in (rn_dw_fold) ---- */

/* One pixel's 16 channels of a tap pair: the inputs widened, times the pair's folded weights */
INLINE void fold_px_neon(const uint8_t *s, size_t o0, size_t o1, bool two, int16x8x2_t wl,
                         int16x8x2_t wh, int32x4_t a[4])
{
    uint8x16_t x0 = vld1q_u8(s + o0), x1 = two ? vld1q_u8(s + o1) : vdupq_n_u8(0);
    int16x8_t l0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x0)));
    int16x8_t h0 = vreinterpretq_s16_u16(vmovl_high_u8(x0));
    int16x8_t l1 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x1)));
    int16x8_t h1 = vreinterpretq_s16_u16(vmovl_high_u8(x1));
    a[0] = vmlal_s16(vmlal_s16(a[0], vget_low_s16(l0), vget_low_s16(wl.val[0])),
                     vget_low_s16(l1), vget_low_s16(wl.val[1]));
    a[1] = vmlal_high_s16(vmlal_high_s16(a[1], l0, wl.val[0]), l1, wl.val[1]);
    a[2] = vmlal_s16(vmlal_s16(a[2], vget_low_s16(h0), vget_low_s16(wh.val[0])),
                     vget_low_s16(h1), vget_low_s16(wh.val[1]));
    a[3] = vmlal_high_s16(vmlal_high_s16(a[3], h0, wh.val[0]), h1, wh.val[1]);
}

/*
 * rn_dw_fold: a tap pair's folded weights deinterleave (LD2) into the two taps' 8 channels, so
 * each pixel's widened inputs multiply-accumulate into int32 (SMLAL), 2 pixels at a time.
 */
static void dw_fold_neon(const uint8_t *src, size_t step, size_t row, size_t col, uint32_t kh,
                         uint32_t kw, const int16_t *packed, int32_t *acc, size_t astride,
                         size_t n, size_t npix)
{
    size_t taps = (size_t)kh * kw, pairs = RN_DW_FOLD_PAIRS(taps), off[1024], c = 0;
    const int32_t *corr = rn_dw_fold_setup(row, col, kh, kw, packed, n, off);
    for (; c + 16 <= n; c += 16) {
        const int16_t *wg = packed + c / 16 * pairs * 32;
        for (size_t p = 0; p < npix; p += 2) {
            bool two_px = p + 1 < npix;
            const uint8_t *s0 = src + p * step + c, *s1 = two_px ? s0 + step : s0;
            int32x4_t a0[4], a1[4];
            for (int q = 0; q < 4; q++) {
                a0[q] = a1[q] = vld1q_s32(corr + c + 4 * q);
            }
            for (size_t t = 0; t < taps; t += 2) {
                bool two = t + 1 < taps;
                int16x8x2_t wl = vld2q_s16(wg + t * 16), wh = vld2q_s16(wg + t * 16 + 16);
                size_t o1 = two ? off[t + 1] : 0;
                fold_px_neon(s0, off[t], o1, two, wl, wh, a0);
                fold_px_neon(s1, off[t], o1, two, wl, wh, a1);
            }
            for (int q = 0; q < 4; q++) {
                vst1q_s32(acc + p * astride + c + 4 * q, a0[q]);
                if (two_px) {
                    vst1q_s32(acc + (p + 1) * astride + c + 4 * q, a1[q]);
                }
            }
        }
    }
    rn_dw_fold_tail(src, step, off, taps, packed, corr, acc, astride, c, n, npix);
}

/* ---- a conv pixel's sums for the DPU ---- */

static void fix_neon(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n, int32_t s,
                     int32_t *fix, int32_t *wsum)
{
    const int32x4_t sv = vdupq_n_s32(s);
    size_t o = 0;
    for (; o + 4 <= nk; o += 4) {
        vst1q_s32(fix + o, vsubq_s32(vld1q_s32(acc + o), vshlq_n_s32(vld1q_s32(wsum_w + o), 7)));
        vst1q_s32(wsum + o, sv);
    }
    for (; o < nk; o++) {
        fix[o] = acc[o] - 128 * wsum_w[o];
        wsum[o] = s;
    }
    for (; o < n; o++) {
        fix[o] = 0;
        wsum[o] = s;
    }
}

/* ---- the tables ---- */

#define NEON_COMMON                                                                           \
    .dw = dw_neon, .dw_pixel = dw_pixel_neon, .sum = sum_neon, .ssum = ssum_neon,            \
    .dpu = dpu_neon, .fix = fix_neon, .dpu_conv = dpu_conv_neon, .dw_fold = dw_fold_neon,    \
    .wide = &rn_wide_neon

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif

static bool cpu_has(const char *feature)
{
#if defined(__linux__)
    if (!strcmp(feature, "dotprod")) {
        return getauxval(AT_HWCAP) & HWCAP_ASIMDDP;
    }
    return getauxval(AT_HWCAP2) & HWCAP2_I8MM;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof(v);
    return !sysctlbyname(strcmp(feature, "dotprod") ? "hw.optional.arm.FEAT_I8MM"
                                                    : "hw.optional.arm.FEAT_DotProd",
                         &v, &len, NULL, 0) && v;
#else
    (void)feature;
    return false;
#endif
}

const struct rn_kernel_impl *rn_kernels_neon(void)
{
    static const struct rn_kernel_impl neon = {
        .name = "neon", .gemm = gemm_mlal, .packed_size = mlal_packed_size, .pack = mlal_pack,
        .pack_fold = mlal_pack_fold, NEON_COMMON,
    };
    return &neon;
}

const struct rn_kernel_impl *rn_kernels_neon_dot(void)
{
#ifdef HAVE_DOT
    static const struct rn_kernel_impl dot = {
        .name = "neon-dot", .gemm = gemm_sdot, .packed_size = sdot_packed_size,
        .pack = sdot_pack, NEON_COMMON,
    };
    if (cpu_has("dotprod")) {
        return &dot;
    }
#endif
    return NULL;
}

const struct rn_kernel_impl *rn_kernels_neon_i8mm(void)
{
#ifdef HAVE_I8MM
    static const struct rn_kernel_impl i8mm = {
        .name = "neon-i8mm", .gemm = gemm_sudot, .packed_size = rn_dot16_packed_size,
        .pack = rn_dot16_pack, NEON_COMMON,
    };
    if (cpu_has("i8mm")) {
        return &i8mm;
    }
#endif
    return NULL;
}

#endif
