/*
 * The AVX2 (x86-64-v3) kernels, in intrinsics, and the AVX-VNNI GEMM. Each function carries
 * its target, so the file builds with any -march and the choice is made at run time
 * (kernels.c); compiled elsewhere it is empty.
 */
#include "kernels-impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* dst[0, n) = v (add: += v), n <= 8 */
AVX2_INLINE void put8(int32_t *dst, __m256i v, size_t n, bool add)
{
    if (n >= 8) {
        if (add) {
            v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)dst));
        }
        _mm256_storeu_si256((__m256i *)dst, v);
    } else if (n) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (add) {
            v = _mm256_add_epi32(v, _mm256_maskload_epi32(dst, m));
        }
        _mm256_maskstore_epi32(dst, m, v);
    }
}

AVX2_INLINE __m256i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* ---- GEMM on vpmaddwd ---- */

/*
 * Weights as int16 [o / 8][k / 2][o % 8][k % 2] (32 bytes per output octet and k pair), input
 * pixels widened to int16 pairs (k, k + 1) and broadcast: one vpmaddwd is 8 outputs' partial
 * sums over 2 k, exact (|255 * -128| * 2 fits). A step is 4 pixels x 16 outputs in 8 ymm
 * accumulators. Up to MADD_PIX pixels' inputs are widened KQ_CHUNK pairs at a time (32 KiB on
 * the stack); each 16 outputs' weights of that chunk (8 KiB) then stay in L1 while every 4
 * pixels of the block pass, rather than all the weights streaming from L2 for each 4 pixels.
 */
#define KQ_CHUNK 128
#define MADD_PIX 64

static size_t madd_packed_size(size_t nout_pad, size_t kp)
{
    return (nout_pad + 7) / 8 * ((kp + 1) / 2) * 32;
}

/* Rows r[0..8) of 8 int32 lanes become columns: r[j] = (r0[j], r1[j], ..., r7[j]). */
AVX2_INLINE void transpose8(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int j = 0; j < 4; j++) {   /* u[j]: columns j and j + 4 of rows 0-3; u[j + 4] of 4-7 */
        r[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
        r[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
    }
}

/* madd_pack with ow added to every row's first kreal weights (rn_gemm_pack_fold) */
AVX2_INLINE void madd_pack_ow(const int8_t *w, size_t nout_pad, size_t kp, size_t kreal,
                              int16_t ow, int8_t *packed)
{
    size_t nob = (nout_pad + 7) / 8, kq = (kp + 1) / 2;
    const __m256i owv = _mm256_set1_epi16(ow), ramp = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7,
                                                                        8, 9, 10, 11, 12, 13, 14,
                                                                        15);
    for (size_t ob = 0; ob < nob; ob++) {
        int8_t *dst = packed + ob * kq * 32;
        size_t q = 0;
        /* 8 pairs of 8 outputs at a time: widen each row's 16 bytes, transpose the 4-byte pairs */
        for (; 2 * q + 16 <= kp; q += 8) {
            __m256i r[8];
            /* ow on the k < kreal of these 16 (a compare of k against kreal) */
            size_t lim = 2 * q >= kreal ? 0 : kreal - 2 * q < 16 ? kreal - 2 * q : 16;
            __m256i add = _mm256_and_si256(
                owv, _mm256_cmpgt_epi16(_mm256_set1_epi16((int16_t)lim), ramp));
            for (size_t l = 0; l < 8; l++) {
                size_t o = ob * 8 + l;
                r[l] = o < nout_pad ? _mm256_add_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(
                                                           (const __m128i *)(w + o * kp + 2 * q))),
                                                       add)
                                    : _mm256_setzero_si256();
            }
            transpose8(r);
            for (size_t j = 0; j < 8; j++) {
                _mm256_storeu_si256((__m256i *)(dst + (q + j) * 32), r[j]);
            }
        }
        for (; q < kq; q++) {
            for (size_t l = 0; l < 8; l++) {
                size_t o = ob * 8 + l;
                int16_t pair[2] = { 0, 0 };
                if (o < nout_pad) {
                    pair[0] = (int16_t)(w[o * kp + 2 * q] + (2 * q < kreal ? ow : 0));
                    pair[1] = 2 * q + 1 < kp ? (int16_t)(w[o * kp + 2 * q + 1] +
                                                         (2 * q + 1 < kreal ? ow : 0))
                                             : 0;
                }
                memcpy(dst + q * 32 + l * 4, pair, 4);
            }
        }
    }
}

AVX2 static void madd_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    madd_pack_ow(w, nout_pad, kp, 0, 0, packed);
}

AVX2 static void madd_pack_fold(const int8_t *w, size_t nout_pad, size_t kp, size_t kreal,
                                int32_t ow, int8_t *packed)
{
    madd_pack_ow(w, nout_pad, kp, kreal, (int16_t)ow, packed);
}

/* x[j] = a[2j] | a[2j + 1] << 16 for the n bytes of a (a last odd byte pairs with 0). */
AVX2_INLINE void widen(const uint8_t *a, size_t n, uint32_t *x)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_si256((__m256i *)(x + i / 2),
                            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i))));
    }
    for (; i < n; i += 2) {
        x[i / 2] = a[i] | (i + 1 < n ? (uint32_t)a[i + 1] << 16 : 0);
    }
}

#define MADD(c, x, b) c = _mm256_add_epi32(c, _mm256_madd_epi16(x, b))

/* 4 pixels (x[0..4), duplicates past pn) x 16 outputs (w1 == w0 past the last octet) */
AVX2_INLINE void madd_4x16(const uint32_t *const x[4], const int8_t *w0, const int8_t *w1,
                           size_t qn, size_t pn, int32_t *dst, size_t no, size_t n0, size_t n1,
                           bool add)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (size_t j = 0; j < qn; j++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(w0 + j * 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(w1 + j * 32));
        __m256i v = bcast32(x[0] + j);
        MADD(c00, v, b0);
        MADD(c01, v, b1);
        v = bcast32(x[1] + j);
        MADD(c10, v, b0);
        MADD(c11, v, b1);
        v = bcast32(x[2] + j);
        MADD(c20, v, b0);
        MADD(c21, v, b1);
        v = bcast32(x[3] + j);
        MADD(c30, v, b0);
        MADD(c31, v, b1);
    }
    __m256i c[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } };
    for (size_t i = 0; i < pn; i++) {
        put8(dst + i * no, c[i][0], n0, add);
        put8(dst + i * no + 8, c[i][1], n1, add);
    }
}

AVX2 static void gemm_madd(const uint8_t *a, size_t np, const int8_t *wp, size_t no, size_t kp,
                           int32_t *acc)
{
    const size_t nob = (no + 7) / 8, kq = (kp + 1) / 2;
    uint32_t xb[MADD_PIX][KQ_CHUNK];
    for (size_t b0 = 0; b0 < np; b0 += MADD_PIX) {
        size_t bn = np - b0 < MADD_PIX ? np - b0 : MADD_PIX;
        for (size_t q0 = 0; q0 < kq; q0 += KQ_CHUNK) {
            size_t qn = kq - q0 < KQ_CHUNK ? kq - q0 : KQ_CHUNK;
            size_t nb = kp - 2 * q0 < 2 * qn ? kp - 2 * q0 : 2 * qn;
            for (size_t i = 0; i < bn; i++) {
                widen(a + (b0 + i) * kp + 2 * q0, nb, xb[i]);
            }
            for (size_t ob = 0; ob < nob; ob += 2) {
                const int8_t *w0 = wp + (ob * kq + q0) * 32;
                const int8_t *w1 = ob + 1 < nob ? w0 + kq * 32 : w0;
                size_t o0 = ob * 8, n0 = no - o0 < 8 ? no - o0 : 8;
                size_t n1 = ob + 1 < nob ? (no - o0 - 8 < 8 ? no - o0 - 8 : 8) : 0;
                for (size_t p0 = 0; p0 < bn; p0 += 4) {
                    size_t pn = bn - p0 < 4 ? bn - p0 : 4;
                    const uint32_t *x[4] = { xb[p0], xb[p0 + (pn > 1)], xb[p0 + (pn > 2 ? 2 : 0)],
                                             xb[p0 + (pn > 3 ? 3 : 0)] };
                    madd_4x16(x, w0, w1, qn, pn, acc + (b0 + p0) * no + o0, no, n0, n1, q0 > 0);
                }
            }
        }
    }
}

/* ---- GEMM on 256-bit vpdpbusd (AVX-VNNI, or its AVX512-VNNI/VL twin) ---- */

/*
 * Weights as rn_dot16_pack lays them out: one broadcast of 4 input bytes times two 32-byte
 * weight loads gives 16 outputs' partial sums over 4 k. 4 pixels x 16 outputs per step.
 */
#define DOT256_GEMM(fn, attr, DP)                                                              \
    attr static void fn(const uint8_t *a, size_t np, const int8_t *wp, size_t no, size_t kp,  \
                        int32_t *acc)                                                         \
    {                                                                                         \
        size_t nob = (no + 15) / 16, kg = kp / 4;                                             \
        for (size_t p0 = 0; p0 < np; p0 += 4) {                                               \
            size_t pn = np - p0 < 4 ? np - p0 : 4;                                            \
            const uint8_t *r0 = a + p0 * kp, *r1 = pn > 1 ? r0 + kp : r0;                     \
            const uint8_t *r2 = pn > 2 ? r0 + 2 * kp : r0, *r3 = pn > 3 ? r0 + 3 * kp : r0;   \
            for (size_t ob = 0; ob < nob; ob++) {                                             \
                const int8_t *w = wp + ob * kg * 64;                                          \
                __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;        \
                __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;                           \
                for (size_t k = 0; k < kg; k++) {                                             \
                    __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + k * 64));           \
                    __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + k * 64 + 32));      \
                    __m256i x = bcast32(r0 + 4 * k);                                          \
                    c00 = DP(c00, x, b0);                                                     \
                    c01 = DP(c01, x, b1);                                                     \
                    x = bcast32(r1 + 4 * k);                                                  \
                    c10 = DP(c10, x, b0);                                                     \
                    c11 = DP(c11, x, b1);                                                     \
                    x = bcast32(r2 + 4 * k);                                                  \
                    c20 = DP(c20, x, b0);                                                     \
                    c21 = DP(c21, x, b1);                                                     \
                    x = bcast32(r3 + 4 * k);                                                  \
                    c30 = DP(c30, x, b0);                                                     \
                    c31 = DP(c31, x, b1);                                                     \
                }                                                                             \
                size_t o0 = ob * 16, n = no - o0 < 16 ? no - o0 : 16;                         \
                __m256i c[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } }; \
                for (size_t i = 0; i < pn; i++) {                                             \
                    int32_t *dst = acc + (p0 + i) * no + o0;                                  \
                    put8(dst, c[i][0], n < 8 ? n : 8, false);                                 \
                    put8(dst + 8, c[i][1], n > 8 ? n - 8 : 0, false);                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

/* AVX-VNNI (VEX) needs GCC 11 or clang 12; the EVEX twin is what a CPU with AVX-512 runs. */
#if defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11
#define HAVE_AVXVNNI 1
DOT256_GEMM(gemm_avxvnni, __attribute__((target("avx2,fma,avxvnni"))), _mm256_dpbusd_avx_epi32)
#endif
DOT256_GEMM(gemm_avxvnni_evex, __attribute__((target("avx2,fma,avx512f,avx512vl,avx512vnni"))),
            _mm256_dpbusd_epi32)

/* ---- depthwise and byte sums ---- */

/* d[0, 16) += the 16 int16 lanes of v */
AVX2_INLINE void add16(int32_t *d, __m256i v)
{
    __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(v));
    __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(v, 1));
    _mm256_storeu_si256((__m256i *)d, _mm256_add_epi32(_mm256_loadu_si256((__m256i *)d), lo));
    _mm256_storeu_si256((__m256i *)(d + 8),
                        _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(d + 8)), hi));
}

/* 16 channels of input - 128 as int16 (u8 ^ 0x80 is the same byte as a signed u8 - 128) */
AVX2_INLINE __m256i in16(const uint8_t *s)
{
    return _mm256_cvtepi8_epi16(_mm_xor_si128(_mm_loadu_si128((const __m128i *)s),
                                              _mm_set1_epi8((char)0x80)));
}

AVX2_INLINE __m256i w16(const int8_t *w)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
}

AVX2 void rn_avx2_dw(const uint8_t *s, const int8_t *w, int32_t *acc, int32_t *sum, size_t n)
{
    size_t c = 0;
    for (; c + 16 <= n; c += 16) {
        __m256i x = in16(s + c);
        add16(acc + c, _mm256_mullo_epi16(x, w16(w + c)));   /* |product| <= 2^14 */
        add16(sum + c, x);
    }
    for (; c < n; c++) {
        int32_t x = (int32_t)s[c] - 128;
        acc[c] += x * w[c];
        sum[c] += x;
    }
}

/*
 * Taps in pairs: (x_t, x_t+1) and (w_t, w_t+1) interleaved as int16 pairs, so one vpmaddwd sums
 * two taps of 8 channels in int32 (|x w| <= 2^14: exact). unpacklo/hi take channels 0-3/8-11 and
 * 4-7/12-15 of the two 128-bit lanes; the two accumulators are put back in order at the end.
 */
AVX2 void rn_avx2_dw_pixel(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                           const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n)
{
    size_t c = 0, taps = (size_t)kh * kw;
    /* window sums in int16: up to 256 taps of -128..127 */
    if (taps <= 256) {
        size_t off[256];
        for (size_t t = 0; t < taps; t++) {
            off[t] = t / kw * row + t % kw * col;
        }
        for (; c + 16 <= n; c += 16) {
            __m256i lo = _mm256_setzero_si256(), hi = lo, s16 = lo;
            for (size_t t = 0; t < taps; t += 2) {
                __m256i x0 = in16(src + off[t] + c), w0 = w16(w + t * wstride + c);
                __m256i x1 = _mm256_setzero_si256(), w1 = x1;
                if (t + 1 < taps) {
                    x1 = in16(src + off[t + 1] + c);
                    w1 = w16(w + (t + 1) * wstride + c);
                }
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1),
                                                            _mm256_unpacklo_epi16(w0, w1)));
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1),
                                                            _mm256_unpackhi_epi16(w0, w1)));
                s16 = _mm256_add_epi16(s16, _mm256_add_epi16(x0, x1));
            }
            __m256i a0 = _mm256_permute2x128_si256(lo, hi, 0x20);
            __m256i a1 = _mm256_permute2x128_si256(lo, hi, 0x31);
            _mm256_storeu_si256((__m256i *)(acc + c),
                                _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(acc + c)), a0));
            _mm256_storeu_si256((__m256i *)(acc + c + 8),
                                _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(acc + c + 8)), a1));
            add16(sum + c, s16);
        }
    }
    if (c < n) {
        for (uint32_t ky = 0; ky < kh; ky++) {
            for (uint32_t kx = 0; kx < kw; kx++) {
                rn_avx2_dw(src + ky * row + kx * col + c, w + ((size_t)ky * kw + kx) * wstride + c,
                           acc + c, sum + c, n - c);
            }
        }
    }
}

/*
 * rn_dw_fold, 4 pixels x 16 channels a step: a tap pair's bytes of two taps interleave
 * (punpcklbw) and widen to the int16 pairs that vpmaddwd takes with the folded weight pairs, so
 * a pixel costs 8 vector ops per 2 taps x 16 channels, the weights only their loads. The
 * accumulators are named, not an array, so that they stay in registers.
 */
AVX2_INLINE void fold_px(const uint8_t *s, size_t o0, size_t o1, bool two, __m256i wl, __m256i wh,
                         __m256i *a0, __m256i *a1)
{
    __m128i x0 = _mm_loadu_si128((const __m128i *)(s + o0));
    __m128i x1 = two ? _mm_loadu_si128((const __m128i *)(s + o1)) : _mm_setzero_si128();
    *a0 = _mm256_add_epi32(*a0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x0, x1)),
                                                  wl));
    *a1 = _mm256_add_epi32(*a1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(x0, x1)),
                                                  wh));
}

AVX2_INLINE void fold_put(int32_t *d, __m256i a0, __m256i a1)
{
    _mm256_storeu_si256((__m256i *)d, a0);
    _mm256_storeu_si256((__m256i *)(d + 8), a1);
}

/* Pixels s0..s3 (n4: 4, else only s0), 16 channels from wg's pairs; sums to d0 + q * astride */
AVX2_INLINE void fold_block(const uint8_t *s0, size_t step, bool n4, const size_t *off,
                            size_t taps, const int16_t *wg, __m256i k0, __m256i k1, int32_t *d0,
                            size_t astride)
{
    const uint8_t *s1 = s0 + step, *s2 = s1 + step, *s3 = s2 + step;
    __m256i a00 = k0, a01 = k1, a10 = k0, a11 = k1, a20 = k0, a21 = k1, a30 = k0, a31 = k1;
    for (size_t t = 0; t < taps; t += 2) {
        bool two = t + 1 < taps;
        size_t o0 = off[t], o1 = two ? off[t + 1] : 0;
        __m256i wl = _mm256_loadu_si256((const __m256i *)(wg + t * 16));
        __m256i wh = _mm256_loadu_si256((const __m256i *)(wg + t * 16 + 16));
        fold_px(s0, o0, o1, two, wl, wh, &a00, &a01);
        if (n4) {
            fold_px(s1, o0, o1, two, wl, wh, &a10, &a11);
            fold_px(s2, o0, o1, two, wl, wh, &a20, &a21);
            fold_px(s3, o0, o1, two, wl, wh, &a30, &a31);
        }
    }
    fold_put(d0, a00, a01);
    if (n4) {
        fold_put(d0 + astride, a10, a11);
        fold_put(d0 + 2 * astride, a20, a21);
        fold_put(d0 + 3 * astride, a30, a31);
    }
}

AVX2 void rn_avx2_dw_fold(const uint8_t *src, size_t step, size_t row, size_t col, uint32_t kh,
                          uint32_t kw, const int16_t *packed, int32_t *acc, size_t astride,
                          size_t n, size_t npix)
{
    size_t taps = (size_t)kh * kw, pairs = RN_DW_FOLD_PAIRS(taps), off[1024], c = 0;
    const int32_t *corr = rn_dw_fold_setup(row, col, kh, kw, packed, n, off);
    for (; c + 16 <= n; c += 16) {
        const int16_t *wg = packed + c / 16 * pairs * 32;
        __m256i k0 = _mm256_loadu_si256((const __m256i *)(corr + c));
        __m256i k1 = _mm256_loadu_si256((const __m256i *)(corr + c + 8));
        size_t p = 0;
        for (; p + 4 <= npix; p += 4) {
            fold_block(src + p * step + c, step, true, off, taps, wg, k0, k1,
                       acc + p * astride + c, astride);
        }
        for (; p < npix; p++) {
            fold_block(src + p * step + c, step, false, off, taps, wg, k0, k1,
                       acc + p * astride + c, astride);
        }
    }
    rn_dw_fold_tail(src, step, off, taps, packed, corr, acc, astride, c, n, npix);
}

AVX2 uint32_t rn_avx2_sum(const uint8_t *p, size_t n)
{
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_loadu_si256((const __m256i *)(p + i)),
                                                _mm256_setzero_si256()));
    }
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    if (i + 16 <= n) {   /* window rows are often 16 * k bytes: no byte loop for them */
        h = _mm_add_epi64(h, _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(p + i)),
                                          _mm_setzero_si128()));
        i += 16;
    }
    if (i + 8 <= n) {
        h = _mm_add_epi64(h, _mm_sad_epu8(_mm_loadl_epi64((const __m128i *)(p + i)),
                                          _mm_setzero_si128()));
        i += 8;
    }
    uint64_t t = (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1);
    for (; i < n; i++) {
        t += p[i];
    }
    return (uint32_t)t;
}

/* The signed bytes XOR 0x80 are the unsigned x + 128: vpsadbw sums them. */
AVX2 int32_t rn_avx2_ssum(const int8_t *p, size_t n)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + i)), bias);
        s = _mm256_add_epi64(s, _mm256_sad_epu8(x, _mm256_setzero_si256()));
    }
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    int64_t t = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1) - 128 * (int64_t)i;
    for (; i < n; i++) {
        t += p[i];
    }
    return (int32_t)t;
}

/* ---- the DPU fast path, 4 lanes of double per ymm ---- */

/*
 * Every value of the rule fits 53 bits, so doubles hold them exactly: acc + ow_op * wsum < 2^47,
 * (e + ew_offset) * ew_scale < 2^46, v * out_scale < 2^47 (the scales and ow_op are 16-bit), and
 * a product scaled by 2^-shift is exact too. vroundpd's nearest mode is the ties-to-even
 * rounding of a right shift; ties up are the floor plus one where the fraction is exactly 1/2.
 */
struct dpu_d {
    __m256d ow, tsc, esc, eoff, osc, ooff, i32min, i32max, o8min, o8max;
};

#define RNE_PD(x) _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

AVX2_INLINE __m256d clamp_pd(__m256d x, __m256d lo, __m256d hi)
{
    return _mm256_min_pd(_mm256_max_pd(x, lo), hi);
}

AVX2_INLINE __m256d ld4pd(const int32_t *p)
{
    return _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)p));
}

/* Lanes [0, 4) of the rule in kernels.h; tr, up, ew: CLIP_TRUNCATE, its ties up, the EW operand */
AVX2_INLINE __m128i dpu4(const struct dpu_d *k, bool tr, bool up, bool ew, const int32_t *acc,
                         const int32_t *bias, const int32_t *wsum, const int8_t *e)
{
    __m256d x = _mm256_fmadd_pd(ld4pd(wsum), k->ow, ld4pd(acc));
    if (tr) {
        __m256d y = _mm256_mul_pd(x, k->tsc);
        x = RNE_PD(y);
        if (up) {
            __m256d f = _mm256_floor_pd(y);
            __m256d tie = _mm256_cmp_pd(_mm256_sub_pd(y, f), _mm256_set1_pd(0.5), _CMP_EQ_OQ);
            x = _mm256_blendv_pd(x, _mm256_add_pd(f, _mm256_set1_pd(1.0)), tie);
        }
    }
    x = clamp_pd(_mm256_add_pd(x, ld4pd(bias)), k->i32min, k->i32max);
    if (ew) {   /* e + ew_offset fits 32 bits: dpu_setup keeps larger offsets off this path */
        int32_t e4;
        memcpy(&e4, e, 4);
        __m256d ev = _mm256_cvtepi32_pd(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(e4)));
        ev = RNE_PD(_mm256_mul_pd(_mm256_add_pd(ev, k->eoff), k->esc));
        x = clamp_pd(_mm256_add_pd(x, ev), k->i32min, k->i32max);
    }
    x = _mm256_add_pd(RNE_PD(_mm256_mul_pd(x, k->osc)), k->ooff);
    return _mm256_cvtpd_epi32(clamp_pd(x, k->o8min, k->o8max));
}

AVX2_INLINE void dpu_loop(const struct dpu_d *k, bool tr, bool up, bool ew, const int32_t *acc,
                          const int32_t *bias, const int32_t *wsum, const int8_t *e, size_t es,
                          int8_t *out, size_t os, size_t n)
{
    for (size_t i = 0; i < n; i++, acc += 16, bias += 16, wsum += 16, e += es, out += os) {
        __m128i r0 = dpu4(k, tr, up, ew, acc, bias, wsum, e);
        __m128i r1 = dpu4(k, tr, up, ew, acc + 4, bias + 4, wsum + 4, e + 4);
        __m128i r2 = dpu4(k, tr, up, ew, acc + 8, bias + 8, wsum + 8, e + 8);
        __m128i r3 = dpu4(k, tr, up, ew, acc + 12, bias + 12, wsum + 12, e + 12);
        _mm_storeu_si128((__m128i *)out, _mm_packs_epi16(_mm_packs_epi32(r0, r1),
                                                         _mm_packs_epi32(r2, r3)));
    }
}

/* ---- the DPU fast path in integer lanes, where the task's bound allows it ---- */

/*
 * Where rn_dpu_int_plan allows. The wide form: the product v * out_scale (|.| < 2^46) rounds in
 * int64 lanes to |q| <= 2^30 + 1, and a logical right shift gets its low 32 bits right (bits
 * osh .. osh + 31 of the two's complement product); the packs saturate to int8 exactly as the
 * rule clamps.
 */
struct dpu_i {
    __m256i osc, half1, one, ooff, ow, tmask, thalf;
    __m256i vmin, vmax, osc32, half32;   /* the narrow form (dpu_i_setup) */
    __m128i sh, tsh;
    bool tr, up, narrow;
};

/* false (k unset) where the plan refuses the task */
AVX2_INLINE bool dpu_i_setup(struct dpu_i *k, const struct rn_dpu_fast *f)
{
    struct rn_dpu_int p;   /* the narrow form: 8 int32 lanes rather than 4 int64 */
    if (!rn_dpu_int_plan(f, &p)) {
        return false;
    }
    k->osc = _mm256_set1_epi64x(f->out_scale);
    k->half1 = _mm256_set1_epi64x(((int64_t)1 << (f->out_shift - 1)) - 1);
    k->one = _mm256_set1_epi64x(1);
    k->ooff = _mm256_set1_epi32(f->out_offset);
    k->ow = _mm256_set1_epi32(f->ow_op);
    k->sh = _mm_cvtsi32_si128((int)f->out_shift);
    k->tr = f->trunc != 0;
    k->up = f->trunc_half_up;
    k->tsh = _mm_cvtsi32_si128((int)f->trunc);
    k->tmask = _mm256_set1_epi32((int32_t)((1u << f->trunc) - 1));
    k->thalf = _mm256_set1_epi32(f->trunc ? (int32_t)(1u << (f->trunc - 1)) : 0);
    k->narrow = p.narrow;
    k->vmin = _mm256_set1_epi32(-p.v);
    k->vmax = _mm256_set1_epi32(p.v);
    k->osc32 = _mm256_set1_epi32(f->out_scale);
    k->half32 = _mm256_set1_epi32((int32_t)((INT64_C(1) << (f->out_shift - 1)) - 1));
    return true;
}

/*
 * CLIP_TRUNCATE of x (exact int32, trunc 1..30): the floor plus one above the half, and at the
 * half when rounding up or the floor is odd. |result| <= |x|, so the bias add stays exact.
 */
AVX2_INLINE __m256i trunc8(const struct dpu_i *k, __m256i x)
{
    __m256i q = _mm256_sra_epi32(x, k->tsh), r = _mm256_and_si256(x, k->tmask);
    __m256i gt = _mm256_cmpgt_epi32(r, k->thalf), eq = _mm256_cmpeq_epi32(r, k->thalf);
    __m256i tie = k->up ? eq : _mm256_and_si256(eq, _mm256_slli_epi32(q, 31));
    /* masks are -1: bit 31 of tie says "odd floor" after the shift; take the sign as the flag */
    __m256i inc = _mm256_or_si256(gt, _mm256_srai_epi32(tie, 31));
    return _mm256_sub_epi32(q, inc);
}

/* RNE(y >> osh): y + 2^(osh-1) - 1 + (bit osh of y), shifted */
AVX2_INLINE __m256i rne64(const struct dpu_i *k, __m256i y)
{
    __m256i bit = _mm256_and_si256(_mm256_srl_epi64(y, k->sh), k->one);
    return _mm256_srl_epi64(_mm256_add_epi64(_mm256_add_epi64(y, k->half1), bit), k->sh);
}

/* 8 lanes: out_offset + RNE((v * out_scale) >> out_shift), before the saturation */
AVX2_INLINE __m256i dpu8_i(const struct dpu_i *k, bool narrow, __m256i v)
{
    if (narrow) {
        __m256i y = _mm256_mullo_epi32(_mm256_min_epi32(_mm256_max_epi32(v, k->vmin), k->vmax),
                                       k->osc32);
        __m256i bit = _mm256_and_si256(_mm256_sra_epi32(y, k->sh), _mm256_set1_epi32(1));
        __m256i q = _mm256_sra_epi32(_mm256_add_epi32(_mm256_add_epi32(y, k->half32), bit), k->sh);
        return _mm256_add_epi32(q, k->ooff);
    }
    __m256i ev = rne64(k, _mm256_mul_epi32(v, k->osc));
    __m256i od = rne64(k, _mm256_mul_epi32(_mm256_srli_epi64(v, 32), k->osc));
    return _mm256_add_epi32(_mm256_blend_epi32(ev, _mm256_slli_epi64(od, 32), 0xAA), k->ooff);
}

/* 16 int32 lanes to 16 saturated bytes, in order */
AVX2_INLINE __m128i sat16(__m256i lo, __m256i hi)
{
    __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

AVX2_INLINE __m256i ld8(const int32_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* One atom's 16 lanes from their int32 sums: CLIP_TRUNCATE, bias, OUT_CVT, saturation. */
AVX2_INLINE __m128i atom_i(const struct dpu_i *k, bool tr, bool narrow, __m256i x0, __m256i x1,
                           const int32_t *bias)
{
    __m256i v0 = _mm256_add_epi32(tr ? trunc8(k, x0) : x0, ld8(bias));
    __m256i v1 = _mm256_add_epi32(tr ? trunc8(k, x1) : x1, ld8(bias + 8));
    return sat16(dpu8_i(k, narrow, v0), dpu8_i(k, narrow, v1));
}

AVX2_INLINE void atoms_i(const struct dpu_i *k, bool tr, bool narrow, const int32_t *acc,
                         const int32_t *bias, const int32_t *wsum, int8_t *out, size_t os,
                         size_t n)
{
    for (size_t i = 0; i < n; i++, acc += 16, bias += 16, wsum += 16, out += os) {
        __m256i x0 = _mm256_add_epi32(ld8(acc), _mm256_mullo_epi32(k->ow, ld8(wsum)));
        __m256i x1 = _mm256_add_epi32(ld8(acc + 8), _mm256_mullo_epi32(k->ow, ld8(wsum + 8)));
        _mm_storeu_si128((__m128i *)out, atom_i(k, tr, narrow, x0, x1, bias));
    }
}

AVX2 static bool dpu_atoms_i(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                             const int32_t *wsum, int8_t *out, size_t os, size_t n)
{
    struct dpu_i k;
    if (!dpu_i_setup(&k, f)) {
        return false;
    }
    if (k.narrow) {   /* each form a loop of its own: the choice is per task */
        atoms_i(&k, k.tr, true, acc, bias, wsum, out, os, n);
    } else {
        atoms_i(&k, k.tr, false, acc, bias, wsum, out, os, n);
    }
    return true;
}

/* exact in int32 by fits32; the weight sums undo the inputs' + 128 */
AVX2_INLINE void conv_i(const struct dpu_i *k, bool tr, bool narrow, int32_t ow,
                        const int32_t *acc, size_t acc_stride, const int32_t *wsum_w,
                        const int32_t *bias, const int32_t *s, int8_t *out, size_t os,
                        size_t natoms, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        __m256i ows = _mm256_set1_epi32((int32_t)((int64_t)ow * s[i]));
        const int32_t *a = acc + i * acc_stride;
        for (size_t j = 0; j < natoms; j++) {
            size_t o = 16 * j;
            __m256i x0 = _mm256_sub_epi32(ld8(a + o), _mm256_slli_epi32(ld8(wsum_w + o), 7));
            __m256i x1 = _mm256_sub_epi32(ld8(a + o + 8),
                                          _mm256_slli_epi32(ld8(wsum_w + o + 8), 7));
            _mm_storeu_si128((__m128i *)(out + j * os + i * 16),
                             atom_i(k, tr, narrow, _mm256_add_epi32(x0, ows),
                                    _mm256_add_epi32(x1, ows), bias + o));
        }
    }
}

AVX2 bool rn_avx2_dpu_conv_i(const struct rn_dpu_fast *f, const int32_t *acc, size_t acc_stride,
                             const int32_t *wsum_w, const int32_t *bias, const int32_t *s,
                             int8_t *out, size_t os, size_t natoms, size_t npix)
{
    struct dpu_i k;
    if (!dpu_i_setup(&k, f)) {
        return false;
    }
    if (k.narrow && !k.tr) {   /* the two forms Mesa's programs take get loops of their own */
        conv_i(&k, false, true, f->ow_op, acc, acc_stride, wsum_w, bias, s, out, os, natoms, npix);
    } else if (!k.narrow && !k.tr) {
        conv_i(&k, false, false, f->ow_op, acc, acc_stride, wsum_w, bias, s, out, os, natoms,
               npix);
    } else {
        conv_i(&k, true, k.narrow, f->ow_op, acc, acc_stride, wsum_w, bias, s, out, os, natoms,
               npix);
    }
    return true;
}

/* 2^-sh, exactly */
static double pow2m(uint32_t sh)
{
    return 1.0 / (double)((uint64_t)1 << sh);
}

AVX2 static void dpu_avx2(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                          const int32_t *wsum, const int8_t *e, size_t es, int8_t *out,
                          size_t os, size_t n)
{
    if (dpu_atoms_i(f, acc, bias, wsum, out, os, n)) {   /* the integer form, where it applies */
        return;
    }
    struct dpu_d k;
    k.ow = _mm256_set1_pd(f->ow_op);
    k.tsc = _mm256_set1_pd(f->trunc ? pow2m(f->trunc) : 1.0);
    k.esc = _mm256_set1_pd(f->ew ? f->ew_scale * pow2m(f->ew_shift) : 0.0);
    k.eoff = _mm256_set1_pd(f->ew_offset);
    k.osc = _mm256_set1_pd(f->out_scale * pow2m(f->out_shift));
    k.ooff = _mm256_set1_pd(f->out_offset);
    k.i32min = _mm256_set1_pd(INT32_MIN);
    k.i32max = _mm256_set1_pd(INT32_MAX);
    k.o8min = _mm256_set1_pd(-128);
    k.o8max = _mm256_set1_pd(127);
    if (f->trunc && f->trunc_half_up) {
        if (f->ew) {
            dpu_loop(&k, true, true, true, acc, bias, wsum, e, es, out, os, n);
        } else {
            dpu_loop(&k, true, true, false, acc, bias, wsum, e, es, out, os, n);
        }
    } else if (f->trunc) {
        if (f->ew) {
            dpu_loop(&k, true, false, true, acc, bias, wsum, e, es, out, os, n);
        } else {
            dpu_loop(&k, true, false, false, acc, bias, wsum, e, es, out, os, n);
        }
    } else if (f->ew) {
        dpu_loop(&k, false, false, true, acc, bias, wsum, e, es, out, os, n);
    } else {
        dpu_loop(&k, false, false, false, acc, bias, wsum, e, es, out, os, n);
    }
}

/* ---- a conv pixel's sums for the DPU ---- */

AVX2 void rn_avx2_fix(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n, int32_t s,
                      int32_t *fix, int32_t *wsum)
{
    const __m256i sv = _mm256_set1_epi32(s);
    size_t o = 0;
    for (; o + 8 <= nk; o += 8) {
        __m256i w = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(wsum_w + o)), 7);
        _mm256_storeu_si256((__m256i *)(fix + o),
                            _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(acc + o)), w));
        _mm256_storeu_si256((__m256i *)(wsum + o), sv);
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

static const struct rn_kernel_impl avx2 = {
    .name = "avx2", .gemm = gemm_madd, .packed_size = madd_packed_size, .pack = madd_pack,
    .pack_fold = madd_pack_fold, .dw = rn_avx2_dw, .dw_pixel = rn_avx2_dw_pixel,
    .sum = rn_avx2_sum, .ssum = rn_avx2_ssum, .dpu = dpu_avx2, .fix = rn_avx2_fix,
    .dpu_conv = rn_avx2_dpu_conv_i, .dw_fold = rn_avx2_dw_fold, .wide = &rn_wide_avx2,
};

const struct rn_kernel_impl *rn_kernels_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &avx2 : NULL;
}

#ifdef HAVE_AVXVNNI
/* CPUID.(7, 1):EAX[4]; the OS's YMM state is what AVX2 already needs */
static bool cpu_avxvnni(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1);
}
#endif

const struct rn_kernel_impl *rn_kernels_avxvnni(void)
{
#ifdef HAVE_AVXVNNI
    static const struct rn_kernel_impl vex = {
        .name = "avxvnni", .gemm = gemm_avxvnni, .packed_size = rn_dot16_packed_size,
        .pack = rn_dot16_pack, .dw = rn_avx2_dw, .dw_pixel = rn_avx2_dw_pixel,
        .sum = rn_avx2_sum, .ssum = rn_avx2_ssum, .dpu = dpu_avx2, .fix = rn_avx2_fix,
        .dpu_conv = rn_avx2_dpu_conv_i, .dw_fold = rn_avx2_dw_fold, .wide = &rn_wide_avx2,
    };
#endif
    static const struct rn_kernel_impl evex = {
        .name = "avxvnni", .note = "its 256-bit GEMM EVEX-encoded: AVX512-VNNI/VL, no AVX-VNNI",
        .gemm = gemm_avxvnni_evex, .packed_size = rn_dot16_packed_size, .pack = rn_dot16_pack,
        .dw = rn_avx2_dw, .dw_pixel = rn_avx2_dw_pixel, .sum = rn_avx2_sum,
        .ssum = rn_avx2_ssum, .dpu = dpu_avx2, .fix = rn_avx2_fix, .dpu_conv = rn_avx2_dpu_conv_i,
        .dw_fold = rn_avx2_dw_fold, .wide = &rn_wide_avx2,
    };
    if (!rn_kernels_avx2()) {
        return NULL;
    }
#ifdef HAVE_AVXVNNI
    if (cpu_avxvnni()) {
        return &vex;
    }
#endif
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? &evex
                                                                                      : NULL;
}

#endif
