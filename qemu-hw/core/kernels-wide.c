/*
 * The wide MAC's GEMM (mac.c's vector path for int16 and the floats): int32 rows times int32
 * weight rows, summed in int64 — exact while the caller keeps the sums below 2^63, which it
 * checks before it trusts one (HARDWARE-UNKNOWNS Q19: integers exact, floats as shifted
 * mantissas of one exponent window). Every path here: the generic C one, AVX2 and AVX-512
 * (vpmuldq), NEON (SMLAL); the tables of kernels.c, kernels-x86.c and kernels-arm.c point here.
 */
#include "kernels-impl.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/*
 * Weights in blocks of g outputs, [o / g][k][lane]: with `split`, lane 2i holds output i and lane
 * 2i + 1 output i + g / 2 (vpmuldq multiplies the even 32-bit lanes: the even lanes are the
 * block's first half, the odd ones shifted down its second), else lane i output i. Outputs past
 * nout are zero.
 */
static size_t wide_size(size_t nout, size_t kp, size_t g)
{
    return (nout + g - 1) / g * g * kp * sizeof(int32_t);
}

static void wide_pack(const int32_t *w, size_t nout, size_t kp, int32_t *packed, size_t g,
                      bool split)
{
    memset(packed, 0, wide_size(nout, kp, g));
    for (size_t o = 0; o < nout; o++) {
        size_t i = o % g, lane = !split ? i : i < g / 2 ? 2 * i : 2 * (i - g / 2) + 1;
        int32_t *dst = packed + (o / g) * kp * g + lane;
        for (size_t k = 0; k < kp; k++) {
            dst[k * g] = w[o * kp + k];
        }
    }
}

/*
 * The vector paths' loop: steps of 4 pixel rows times `width` outputs. A step gets the rows
 * (past np the first again, summed and never stored: pn are real), the packed weights of its
 * outputs, and stores the n <= width sums of each real row, `no` apart.
 */
typedef void wstep_fn(const int32_t *const *r, size_t pn, const int32_t *w, size_t kp, size_t n,
                      int64_t *out, size_t no);

static void wdrive(const int32_t *a, size_t lda, size_t np, const int32_t *wp, size_t no,
                   size_t kp, int64_t *acc, size_t width, wstep_fn *step)
{
    for (size_t p0 = 0; p0 < np; p0 += 4) {
        size_t pn = np - p0 < 4 ? np - p0 : 4;
        const int32_t *r[4];
        for (size_t i = 0; i < 4; i++) {
            r[i] = a + (p0 + (i < pn ? i : 0)) * lda;
        }
        for (size_t o0 = 0; o0 < no; o0 += width) {   /* block o0 / g of the packing */
            step(r, pn, wp + o0 * kp, kp, no - o0 < width ? no - o0 : width,
                 acc + p0 * no + o0, no);
        }
    }
}

/* ---- generic: rows as they are, 2 pixels x 4 outputs in registers; sums modulo 2^64 ---- */

static size_t wgemm_size_generic(size_t nout, size_t kp)
{
    return nout * kp * sizeof(int32_t);
}

static void wgemm_pack_generic(const int32_t *w, size_t nout, size_t kp, int32_t *packed)
{
    memcpy(packed, w, nout * kp * sizeof(int32_t));
}

static void wgemm_generic(const int32_t *a, size_t lda, size_t np, const int32_t *w, size_t no,
                          size_t kp, int64_t *acc)
{
    for (size_t p = 0; p < np; p += 2) {
        const int32_t *a0 = a + p * lda, *a1 = p + 1 < np ? a0 + lda : a0;
        for (size_t o = 0; o < no; o += 4) {
            const int32_t *w0 = w + o * kp;
            const int32_t *w1 = o + 1 < no ? w0 + kp : w0, *w2 = o + 2 < no ? w0 + 2 * kp : w0;
            const int32_t *w3 = o + 3 < no ? w0 + 3 * kp : w0;
            uint64_t s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            for (size_t k = 0; k < kp; k++) {   /* each product fits: |int32 * int32| <= 2^62 */
                int64_t x0 = a0[k], x1 = a1[k];
                s00 += (uint64_t)(x0 * w0[k]); s01 += (uint64_t)(x0 * w1[k]);
                s02 += (uint64_t)(x0 * w2[k]); s03 += (uint64_t)(x0 * w3[k]);
                s10 += (uint64_t)(x1 * w0[k]); s11 += (uint64_t)(x1 * w1[k]);
                s12 += (uint64_t)(x1 * w2[k]); s13 += (uint64_t)(x1 * w3[k]);
            }
            uint64_t s[2][4] = { { s00, s01, s02, s03 }, { s10, s11, s12, s13 } };
            for (size_t i = 0; i < 2 && p + i < np; i++) {
                for (size_t j = 0; j < 4 && o + j < no; j++) {
                    acc[(p + i) * no + o + j] = (int64_t)s[i][j];
                }
            }
        }
    }
}

const struct rn_wide_impl rn_wide_generic = {
    .gemm = wgemm_generic, .packed_size = wgemm_size_generic, .pack = wgemm_pack_generic,
};

#if defined(__x86_64__) && defined(__GNUC__)

/*
 * AVX2: 4 pixels x 8 outputs, 8 ymm accumulators of 4 int64. A k step loads the 8 outputs'
 * weights once, and per pixel one broadcast and two vpmuldq (even lanes: outputs 0-3, odd
 * lanes shifted down: outputs 4-7).
 */
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static size_t wgemm_size_avx2(size_t nout, size_t kp)
{
    return wide_size(nout, kp, 8);
}

AVX2 static void wgemm_pack_avx2(const int32_t *w, size_t nout, size_t kp, int32_t *packed)
{
    wide_pack(w, nout, kp, packed, 8, true);
}

AVX2 static void step_avx2(const int32_t *const *r, size_t pn, const int32_t *w, size_t kp,
                           size_t n, int64_t *out, size_t no)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (size_t k = 0; k < kp; k++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + 8 * k));
        __m256i b1 = _mm256_srli_epi64(b0, 32), x;
        x = _mm256_set1_epi32(r[0][k]);
        c00 = _mm256_add_epi64(c00, _mm256_mul_epi32(b0, x));
        c01 = _mm256_add_epi64(c01, _mm256_mul_epi32(b1, x));
        x = _mm256_set1_epi32(r[1][k]);
        c10 = _mm256_add_epi64(c10, _mm256_mul_epi32(b0, x));
        c11 = _mm256_add_epi64(c11, _mm256_mul_epi32(b1, x));
        x = _mm256_set1_epi32(r[2][k]);
        c20 = _mm256_add_epi64(c20, _mm256_mul_epi32(b0, x));
        c21 = _mm256_add_epi64(c21, _mm256_mul_epi32(b1, x));
        x = _mm256_set1_epi32(r[3][k]);
        c30 = _mm256_add_epi64(c30, _mm256_mul_epi32(b0, x));
        c31 = _mm256_add_epi64(c31, _mm256_mul_epi32(b1, x));
    }
    __m256i c[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } };
    for (size_t i = 0; i < pn; i++) {
        int64_t s[8];
        _mm256_storeu_si256((__m256i *)s, c[i][0]);
        _mm256_storeu_si256((__m256i *)(s + 4), c[i][1]);
        memcpy(out + i * no, s, n * sizeof(int64_t));
    }
}

static void wgemm_avx2(const int32_t *a, size_t lda, size_t np, const int32_t *wp, size_t no,
                       size_t kp, int64_t *acc)
{
    wdrive(a, lda, np, wp, no, kp, acc, 8, step_avx2);
}

const struct rn_wide_impl rn_wide_avx2 = {
    .gemm = wgemm_avx2, .packed_size = wgemm_size_avx2, .pack = wgemm_pack_avx2,
};

/*
 * AVX-512: 4 pixels x 32 outputs, 16 zmm accumulators of 8 int64, the same scheme on 16-output
 * blocks (two a step; a lone last block is computed twice and stored once).
 */
#define AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

AVX512 static size_t wgemm_size_avx512(size_t nout, size_t kp)
{
    return wide_size(nout, kp, 16);
}

AVX512 static void wgemm_pack_avx512(const int32_t *w, size_t nout, size_t kp, int32_t *packed)
{
    wide_pack(w, nout, kp, packed, 16, true);
}

#define MUL2(c0, c1, b0, b1, x)                                                               \
    c0 = _mm512_add_epi64(c0, _mm512_mul_epi32(b0, x)),                                       \
    c1 = _mm512_add_epi64(c1, _mm512_mul_epi32(b1, x))

AVX512 static void step_avx512(const int32_t *const *r, size_t pn, const int32_t *w0, size_t kp,
                               size_t n, int64_t *out, size_t no)
{
    const int32_t *w1 = n > 16 ? w0 + kp * 16 : w0;
    __m512i c[4][4];
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 4; j++) {
            c[i][j] = _mm512_setzero_si512();
        }
    }
    for (size_t k = 0; k < kp; k++) {
        __m512i b0 = _mm512_loadu_si512(w0 + 16 * k), b1 = _mm512_srli_epi64(b0, 32);
        __m512i b2 = _mm512_loadu_si512(w1 + 16 * k), b3 = _mm512_srli_epi64(b2, 32);
        __m512i x = _mm512_set1_epi32(r[0][k]);
        MUL2(c[0][0], c[0][1], b0, b1, x);
        MUL2(c[0][2], c[0][3], b2, b3, x);
        x = _mm512_set1_epi32(r[1][k]);
        MUL2(c[1][0], c[1][1], b0, b1, x);
        MUL2(c[1][2], c[1][3], b2, b3, x);
        x = _mm512_set1_epi32(r[2][k]);
        MUL2(c[2][0], c[2][1], b0, b1, x);
        MUL2(c[2][2], c[2][3], b2, b3, x);
        x = _mm512_set1_epi32(r[3][k]);
        MUL2(c[3][0], c[3][1], b0, b1, x);
        MUL2(c[3][2], c[3][3], b2, b3, x);
    }
    for (size_t i = 0; i < pn; i++) {
        for (size_t j = 0; j < 4 && 8 * j < n; j++) {
            size_t m = n - 8 * j < 8 ? n - 8 * j : 8;
            _mm512_mask_storeu_epi64(out + i * no + 8 * j, (__mmask8)((1u << m) - 1), c[i][j]);
        }
    }
}

static void wgemm_avx512(const int32_t *a, size_t lda, size_t np, const int32_t *wp, size_t no,
                         size_t kp, int64_t *acc)
{
    wdrive(a, lda, np, wp, no, kp, acc, 32, step_avx512);
}
#undef MUL2

const struct rn_wide_impl rn_wide_avx512 = {
    .gemm = wgemm_avx512, .packed_size = wgemm_size_avx512, .pack = wgemm_pack_avx512,
};
#endif

#if defined(__aarch64__)

/*
 * NEON: 4 pixels x 8 outputs, 16 accumulators of 2 int64; a k step loads 8 weights and per pixel
 * does four SMLAL / SMLAL2 by the pixel's element.
 */
static size_t wgemm_size_neon(size_t nout, size_t kp)
{
    return wide_size(nout, kp, 8);
}

static void wgemm_pack_neon(const int32_t *w, size_t nout, size_t kp, int32_t *packed)
{
    wide_pack(w, nout, kp, packed, 8, false);
}

#define MLAL4(c, b0, b1, x)                                                                   \
    c[0] = vmlal_n_s32(c[0], vget_low_s32(b0), x), c[1] = vmlal_high_n_s32(c[1], b0, x),      \
    c[2] = vmlal_n_s32(c[2], vget_low_s32(b1), x), c[3] = vmlal_high_n_s32(c[3], b1, x)

static void step_neon(const int32_t *const *r, size_t pn, const int32_t *w, size_t kp, size_t n,
                      int64_t *out, size_t no)
{
    int64x2_t c0[4], c1[4], c2[4], c3[4];
    for (size_t j = 0; j < 4; j++) {
        c0[j] = c1[j] = c2[j] = c3[j] = vdupq_n_s64(0);
    }
    for (size_t k = 0; k < kp; k++) {
        int32x4_t b0 = vld1q_s32(w + 8 * k), b1 = vld1q_s32(w + 8 * k + 4);
        MLAL4(c0, b0, b1, r[0][k]);
        MLAL4(c1, b0, b1, r[1][k]);
        MLAL4(c2, b0, b1, r[2][k]);
        MLAL4(c3, b0, b1, r[3][k]);
    }
    int64x2_t *c[4] = { c0, c1, c2, c3 };
    for (size_t i = 0; i < pn; i++) {
        int64_t s[8];
        for (size_t j = 0; j < 4; j++) {
            vst1q_s64(s + 2 * j, c[i][j]);
        }
        memcpy(out + i * no, s, n * sizeof(int64_t));
    }
}

static void wgemm_neon(const int32_t *a, size_t lda, size_t np, const int32_t *wp, size_t no,
                       size_t kp, int64_t *acc)
{
    wdrive(a, lda, np, wp, no, kp, acc, 8, step_neon);
}
#undef MLAL4

const struct rn_wide_impl rn_wide_neon = {
    .gemm = wgemm_neon, .packed_size = wgemm_size_neon, .pack = wgemm_pack_neon,
};
#endif
