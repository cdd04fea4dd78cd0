/*
 * The MAC loops: the generic C path (written plainly so the compiler vectorises what it can), the
 * AVX-512 VNNI path (vpdpbusd), and the run-time choice among those this build has (the AVX2 and
 * AVX-VNNI paths are in kernels-x86.c, the NEON ones in kernels-arm.c).
 */
#include "kernels-impl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* These loops need the vectoriser whatever the including build's -O level (QEMU uses -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#define INLINE static inline __attribute__((always_inline))

/* 2 pixels x 4 outputs, the whole reduction in registers. */
INLINE void gemm_body(const uint8_t *patch, size_t npix, const int8_t *w, size_t nout_pad,
                      size_t kp, int32_t *acc)
{
    for (size_t p = 0; p < npix; p += 2) {
        const uint8_t *a0 = patch + p * kp;
        const uint8_t *a1 = p + 1 < npix ? a0 + kp : a0;
        for (size_t o = 0; o < nout_pad; o += 4) {
            const int8_t *w0 = w + o * kp, *w1 = w0 + kp, *w2 = w1 + kp, *w3 = w2 + kp;
            int32_t s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
            for (size_t j = 0; j < kp; j++) {
                int32_t x0 = a0[j], x1 = a1[j];
                s00 += x0 * w0[j]; s01 += x0 * w1[j]; s02 += x0 * w2[j]; s03 += x0 * w3[j];
                s10 += x1 * w0[j]; s11 += x1 * w1[j]; s12 += x1 * w2[j]; s13 += x1 * w3[j];
            }
            int32_t *r0 = acc + p * nout_pad + o;
            r0[0] = s00; r0[1] = s01; r0[2] = s02; r0[3] = s03;
            if (p + 1 < npix) {
                int32_t *r1 = r0 + nout_pad;
                r1[0] = s10; r1[1] = s11; r1[2] = s12; r1[3] = s13;
            }
        }
    }
}

INLINE void dw_body(const uint8_t *src, const int8_t *w, int32_t *acc, int32_t *sum, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        int32_t a = (int32_t)src[c] - 128;
        acc[c] += a * w[c];
        sum[c] += a;
    }
}

INLINE void dw_pixel_body(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                          const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n)
{
    for (uint32_t ky = 0; ky < kh; ky++) {
        for (uint32_t kx = 0; kx < kw; kx++) {
            dw_body(src + ky * row + kx * col, w + ((size_t)ky * kw + kx) * wstride, acc, sum, n);
        }
    }
}

INLINE uint32_t sum_body(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += p[i];
    }
    return s;
}

/* Branch-free round-half-to-even right shift, 1 <= sh <= 62. */
INLINE int64_t rne_shift(int64_t x, uint32_t sh)
{
    int64_t q = x >> sh, r = x & (((int64_t)1 << sh) - 1), half = (int64_t)1 << (sh - 1);
    return q + ((r > half) | ((r == half) & (q & 1)));
}

INLINE int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

INLINE void dpu_body(const struct rn_dpu_fast *f, const int32_t *restrict acc,
                     const int32_t *restrict bias, const int32_t *restrict wsum,
                     const int8_t *restrict e, int8_t *restrict out)
{
    const int64_t ow = f->ow_op, osc = f->out_scale, ooff = f->out_offset;
    const int64_t eoff = f->ew_offset, esc = f->ew_scale;
    const uint32_t osh = f->out_shift, esh = f->ew_shift;
    int64_t v[16];
    if (f->trunc) {   /* Q7: round the MAC + CPEND sum before the bias */
        const uint32_t tsh = f->trunc;
        const int64_t half = (int64_t)1 << (tsh - 1), up = f->trunc_half_up;
        for (size_t l = 0; l < 16; l++) {
            int64_t x = (int64_t)acc[l] + ow * wsum[l], q = x >> tsh;
            int64_t r = x & (((int64_t)1 << tsh) - 1);
            q += (r > half) | ((r == half) & (up | (q & 1)));
            v[l] = clamp64(q + bias[l], INT32_MIN, INT32_MAX);
        }
    } else {
        for (size_t l = 0; l < 16; l++) {
            v[l] = clamp64((int64_t)acc[l] + bias[l] + ow * wsum[l], INT32_MIN, INT32_MAX);
        }
    }
    if (f->ew) {
        for (size_t l = 0; l < 16; l++) {
            v[l] = clamp64(v[l] + rne_shift(((int64_t)e[l] + eoff) * esc, esh), INT32_MIN,
                           INT32_MAX);
        }
    }
    for (size_t l = 0; l < 16; l++) {
        out[l] = (int8_t)clamp64(rne_shift(v[l] * osc, osh) + ooff, -128, 127);
    }
}

static void gemm_generic(const uint8_t *a, size_t np, const int8_t *w, size_t no, size_t kp,
                         int32_t *acc)
{
    gemm_body(a, np, w, no, kp, acc);
}

static void dw_generic(const uint8_t *s, const int8_t *w, int32_t *acc, int32_t *sum, size_t n)
{
    dw_body(s, w, acc, sum, n);
}

static void dw_pixel_generic(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                             const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum,
                             size_t n)
{
    dw_pixel_body(src, row, col, kh, kw, w, wstride, acc, sum, n);
}

static uint32_t sum_generic(const uint8_t *p, size_t n)
{
    return sum_body(p, n);
}

static int32_t ssum_generic(const int8_t *p, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += p[i];
    }
    return s;
}

static void dpu_generic(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                        const int32_t *wsum, const int8_t *e, size_t es, int8_t *out, size_t os,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dpu_body(f, acc + 16 * i, bias + 16 * i, wsum + 16 * i, e + i * es, out + i * os);
    }
}

static void fix_generic(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n,
                        int32_t s, int32_t *restrict fix, int32_t *restrict wsum)
{
    for (size_t o = 0; o < nk; o++) {
        fix[o] = acc[o] - 128 * wsum_w[o];
    }
    for (size_t o = nk; o < n; o++) {
        fix[o] = 0;
    }
    for (size_t o = 0; o < n; o++) {
        wsum[o] = s;
    }
}

static size_t plain_packed_size(size_t nout_pad, size_t kp)
{
    return nout_pad * kp;
}

static void plain_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    memcpy(packed, w, nout_pad * kp);
}

size_t rn_dot16_packed_size(size_t nout_pad, size_t kp)
{
    return (nout_pad + 15) / 16 * 16 * ((kp + 3) / 4 * 4);
}

void rn_dot16_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    size_t nob = (nout_pad + 15) / 16, kg = (kp + 3) / 4, k4 = kp / 4;
    for (size_t ob = 0; ob < nob; ob++) {
        int8_t *blk = packed + ob * kg * 64;
        for (size_t l = 0; l < 16; l++) {
            size_t o = ob * 16 + l, k = 0;
            if (o >= nout_pad) {
                for (; k < kg; k++) {
                    memset(blk + k * 64 + l * 4, 0, 4);
                }
                continue;
            }
            const int8_t *row = w + o * kp;
            for (; k < k4; k++) {   /* a row's 4-byte groups, 64 bytes apart */
                memcpy(blk + k * 64 + l * 4, row + k * 4, 4);
            }
            if (k < kg) {   /* kp % 4 bytes, then zeros */
                int8_t last[4] = { 0 };
                memcpy(last, row + k * 4, kp - k * 4);
                memcpy(blk + k * 64 + l * 4, last, 4);
            }
        }
    }
}

const struct rn_kernel_impl rn_kernels_generic = {
    .name = "generic", .gemm = gemm_generic, .packed_size = plain_packed_size,
    .pack = plain_pack, .dw = dw_generic, .dw_pixel = dw_pixel_generic, .sum = sum_generic,
    .ssum = ssum_generic, .dpu = dpu_generic, .fix = fix_generic, .wide = &rn_wide_generic,
};

#if defined(__x86_64__) && defined(__GNUC__)
#ifdef __clang__
#define VNNI_TARGET "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"
#else
#define VNNI_TARGET "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,prefer-vector-width=512"
#endif

/*
 * VNNI GEMM on weights blocked as [o / 16][i / 4][o % 16][i % 4]: one broadcast of 4 input bytes
 * times one 64-byte weight load gives 16 outputs' partial sums (vpdpbusd), so no horizontal
 * reduction is needed. 4 pixels x 32 outputs per step keep 8 accumulators in registers.
 */
__attribute__((target(VNNI_TARGET))) static inline __m512i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

__attribute__((target(VNNI_TARGET)))
static void gemm_vnni_blocked(const uint8_t *a, size_t np, const int8_t *wp, size_t no, size_t kp,
                              int32_t *acc)
{
    size_t nob = (no + 15) / 16, kg = kp / 4;
    for (size_t p0 = 0; p0 < np; p0 += 4) {
        size_t pn = np - p0 < 4 ? np - p0 : 4;
        const uint8_t *r0 = a + p0 * kp, *r1 = pn > 1 ? r0 + kp : r0;
        const uint8_t *r2 = pn > 2 ? r0 + 2 * kp : r0, *r3 = pn > 3 ? r0 + 3 * kp : r0;
        for (size_t ob = 0; ob < nob; ob += 2) {
            const int8_t *w0 = wp + ob * kg * 64, *w1 = ob + 1 < nob ? w0 + kg * 64 : w0;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00;
            __m512i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            for (size_t k = 0; k < kg; k++) {
                __m512i b0 = _mm512_loadu_si512(w0 + k * 64), b1 = _mm512_loadu_si512(w1 + k * 64);
                __m512i x = bcast4(r0 + 4 * k);
                c00 = _mm512_dpbusd_epi32(c00, x, b0);
                c01 = _mm512_dpbusd_epi32(c01, x, b1);
                x = bcast4(r1 + 4 * k);
                c10 = _mm512_dpbusd_epi32(c10, x, b0);
                c11 = _mm512_dpbusd_epi32(c11, x, b1);
                x = bcast4(r2 + 4 * k);
                c20 = _mm512_dpbusd_epi32(c20, x, b0);
                c21 = _mm512_dpbusd_epi32(c21, x, b1);
                x = bcast4(r3 + 4 * k);
                c30 = _mm512_dpbusd_epi32(c30, x, b0);
                c31 = _mm512_dpbusd_epi32(c31, x, b1);
            }
            size_t o0 = ob * 16, n0 = no - o0 < 16 ? no - o0 : 16;
            size_t n1 = ob + 1 < nob ? (no - o0 - 16 < 16 ? no - o0 - 16 : 16) : 0;
            __mmask16 m0 = (__mmask16)((1u << n0) - 1), m1 = (__mmask16)((1u << n1) - 1);
            __m512i c[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } };
            for (size_t i = 0; i < pn; i++) {
                int32_t *dst = acc + (p0 + i) * no + o0;
                _mm512_mask_storeu_epi32(dst, m0, c[i][0]);
                if (n1) {
                    _mm512_mask_storeu_epi32(dst + 16, m1, c[i][1]);
                }
            }
        }
    }
}
/*
 * The DPU fast path, 8 lanes of double per zmm: every value of the rule fits 53 bits (see
 * kernels-x86.c, whose AVX2 version this is), so the products are exact, vrndscalepd's nearest
 * mode is the ties-to-even shift, and ties up are the floor plus one at a fraction of 1/2.
 */
struct dpu_z {
    __m512d ow, tsc, esc, eoff, osc, ooff, i32min, i32max, o8min, o8max;
};

#define RNE_Z(x) _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

__attribute__((target(VNNI_TARGET))) static inline __m512d ld8pd(const int32_t *p)
{
    return _mm512_cvtepi32_pd(_mm256_loadu_si256((const __m256i *)p));
}

__attribute__((target(VNNI_TARGET))) static inline __m512d clamp_z(__m512d x, __m512d lo,
                                                                   __m512d hi)
{
    return _mm512_min_pd(_mm512_max_pd(x, lo), hi);
}

/* Lanes [0, 8) of the rule in kernels.h; tr, up, ew: CLIP_TRUNCATE, its ties up, the EW operand */
__attribute__((target(VNNI_TARGET), always_inline))
static inline __m256i dpu8_z(const struct dpu_z *k, bool tr, bool up, bool ew, const int32_t *acc,
                             const int32_t *bias, const int32_t *wsum, const int8_t *e)
{
    __m512d x = _mm512_fmadd_pd(ld8pd(wsum), k->ow, ld8pd(acc));
    if (tr) {
        __m512d y = _mm512_mul_pd(x, k->tsc);
        x = RNE_Z(y);
        if (up) {
            __m512d f = _mm512_roundscale_pd(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            __mmask8 tie = _mm512_cmp_pd_mask(_mm512_sub_pd(y, f), _mm512_set1_pd(0.5),
                                              _CMP_EQ_OQ);
            x = _mm512_mask_add_pd(x, tie, f, _mm512_set1_pd(1.0));
        }
    }
    x = clamp_z(_mm512_add_pd(x, ld8pd(bias)), k->i32min, k->i32max);
    if (ew) {   /* e + ew_offset fits 32 bits: dpu_setup keeps larger offsets off this path */
        __m512d ev = _mm512_cvtepi32_pd(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)e)));
        ev = RNE_Z(_mm512_mul_pd(_mm512_add_pd(ev, k->eoff), k->esc));
        x = clamp_z(_mm512_add_pd(x, ev), k->i32min, k->i32max);
    }
    x = _mm512_add_pd(RNE_Z(_mm512_mul_pd(x, k->osc)), k->ooff);
    return _mm512_cvtpd_epi32(clamp_z(x, k->o8min, k->o8max));
}

__attribute__((target(VNNI_TARGET), always_inline))
static inline void dpu_loop_z(const struct dpu_z *k, bool tr, bool up, bool ew,
                              const int32_t *acc, const int32_t *bias, const int32_t *wsum,
                              const int8_t *e, size_t es, int8_t *out, size_t os, size_t n)
{
    for (size_t i = 0; i < n; i++, acc += 16, bias += 16, wsum += 16, e += es, out += os) {
        __m256i lo = dpu8_z(k, tr, up, ew, acc, bias, wsum, e);
        __m256i hi = dpu8_z(k, tr, up, ew, acc + 8, bias + 8, wsum + 8, e + 8);
        _mm_storeu_si128((__m128i *)out,
                         _mm512_cvtepi32_epi8(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)));
    }
}

/* 2^-sh, exactly */
static double pow2m(uint32_t sh)
{
    return 1.0 / (double)((uint64_t)1 << sh);
}

__attribute__((target(VNNI_TARGET)))
static void dpu_vnni(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                     const int32_t *wsum, const int8_t *e, size_t es, int8_t *out, size_t os,
                     size_t n)
{
    struct dpu_z k;
    k.ow = _mm512_set1_pd(f->ow_op);
    k.tsc = _mm512_set1_pd(f->trunc ? pow2m(f->trunc) : 1.0);
    k.esc = _mm512_set1_pd(f->ew ? f->ew_scale * pow2m(f->ew_shift) : 0.0);
    k.eoff = _mm512_set1_pd(f->ew_offset);
    k.osc = _mm512_set1_pd(f->out_scale * pow2m(f->out_shift));
    k.ooff = _mm512_set1_pd(f->out_offset);
    k.i32min = _mm512_set1_pd(INT32_MIN);
    k.i32max = _mm512_set1_pd(INT32_MAX);
    k.o8min = _mm512_set1_pd(-128);
    k.o8max = _mm512_set1_pd(127);
    if (f->trunc && f->trunc_half_up) {
        if (f->ew) {
            dpu_loop_z(&k, true, true, true, acc, bias, wsum, e, es, out, os, n);
        } else {
            dpu_loop_z(&k, true, true, false, acc, bias, wsum, e, es, out, os, n);
        }
    } else if (f->trunc) {
        if (f->ew) {
            dpu_loop_z(&k, true, false, true, acc, bias, wsum, e, es, out, os, n);
        } else {
            dpu_loop_z(&k, true, false, false, acc, bias, wsum, e, es, out, os, n);
        }
    } else if (f->ew) {
        dpu_loop_z(&k, false, false, true, acc, bias, wsum, e, es, out, os, n);
    } else {
        dpu_loop_z(&k, false, false, false, acc, bias, wsum, e, es, out, os, n);
    }
}

/* The AVX-512 VNNI path: its GEMM and DPU; the depthwise and byte sums of the AVX2 path. */
static const struct rn_kernel_impl vnni = {
    .name = "avx512vnni", .gemm = gemm_vnni_blocked, .packed_size = rn_dot16_packed_size,
    .pack = rn_dot16_pack, .dw = rn_avx2_dw, .dw_pixel = rn_avx2_dw_pixel, .sum = rn_avx2_sum,
    .ssum = rn_avx2_ssum, .dpu = dpu_vnni, .fix = rn_avx2_fix, .dpu_conv = rn_avx2_dpu_conv_i,
    .dw_fold = rn_avx2_dw_fold,
    .wide = &rn_wide_avx512,
};

static const struct rn_kernel_impl *kernels_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") ? &vnni
                                                                                      : NULL;
}
#endif

/* Every path of this build, best first. */
static const struct {
    const char *name;
    const struct rn_kernel_impl *(*get)(void);   /* NULL where this CPU cannot run it */
} paths[] = {
#if defined(__x86_64__) && defined(__GNUC__)
    { "avx512vnni", kernels_vnni },
    { "avxvnni", rn_kernels_avxvnni },
    { "avx2", rn_kernels_avx2 },
#endif
#if defined(__aarch64__)
    { "neon-i8mm", rn_kernels_neon_i8mm },
    { "neon-dot", rn_kernels_neon_dot },
    { "neon", rn_kernels_neon },
#endif
    { "generic", NULL },
};

#define NPATHS (sizeof(paths) / sizeof(paths[0]))

static const struct rn_kernel_impl *path_impl(size_t i)
{
    return paths[i].get ? paths[i].get() : &rn_kernels_generic;
}

const char *rn_kernels_path(size_t i, bool *runs)
{
    if (i >= NPATHS) {
        return NULL;
    }
    *runs = path_impl(i) != NULL;
    return paths[i].name;
}

const struct rn_kernel_impl *rn_kernels_get(const char *name)
{
    for (size_t i = 0; i < NPATHS; i++) {
        if (!strcmp(paths[i].name, name)) {
            return path_impl(i);
        }
    }
    return NULL;
}

/*
 * The best path the CPU runs; RKNPU_ISA=X starts the search at X, so that tests cover every
 * lesser path on one host (an unknown name is ignored).
 */
static const struct rn_kernel_impl *pick(void)
{
    const char *want = getenv("RKNPU_ISA");
    size_t from = 0;
    for (size_t i = 0; want && i < NPATHS; i++) {
        if (!strcmp(paths[i].name, want)) {
            from = i;
        }
    }
    for (size_t i = from; i < NPATHS; i++) {
        const struct rn_kernel_impl *k = path_impl(i);
        if (k) {
            return k;
        }
    }
    return &rn_kernels_generic;
}

/* Picked once; threads racing on first use all compute the same answer and store it. */
static const struct rn_kernel_impl *impl(void)
{
    static _Atomic(const struct rn_kernel_impl *) chosen;
    const struct rn_kernel_impl *i = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!i) {
        i = pick();
        atomic_store_explicit(&chosen, i, memory_order_release);
    }
    return i;
}

void rn_gemm_u8s8(const uint8_t *patch, size_t npix, const int8_t *packed, size_t nout_pad,
                  size_t kp, int32_t *acc)
{
    impl()->gemm(patch, npix, packed, nout_pad, kp, acc);
}

size_t rn_gemm_packed_size(size_t nout_pad, size_t kp)
{
    return impl()->packed_size(nout_pad, kp);
}

void rn_gemm_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed)
{
    impl()->pack(w, nout_pad, kp, packed);
}

bool rn_gemm_pack_fold(const int8_t *w, size_t nout_pad, size_t kp, size_t kreal, int32_t ow_op,
                       int8_t *packed)
{
    const struct rn_kernel_impl *k = impl();
    if (!k->pack_fold) {
        return false;
    }
    k->pack_fold(w, nout_pad, kp, kreal, ow_op, packed);
    return true;
}

void rn_dw_tap(const uint8_t *src, const int8_t *w, int32_t *acc, int32_t *sum, size_t n)
{
    impl()->dw(src, w, acc, sum, n);
}

void rn_dw_pixel(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                 const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n)
{
    impl()->dw_pixel(src, row, col, kh, kw, w, wstride, acc, sum, n);
}

uint32_t rn_sum_u8(const uint8_t *p, size_t n)
{
    return impl()->sum(p, n);
}

void rn_dpu_conv_by_atoms(const struct rn_kernel_impl *k, const struct rn_dpu_fast *f,
                          const int32_t *acc, size_t acc_stride, const int32_t *wsum_w,
                          const int32_t *bias, const int32_t *s, const int8_t *e, size_t e_stride,
                          int8_t *out, size_t out_stride, size_t natoms, size_t npix)
{
    static const int8_t no_e[16];
    int32_t a[256], ws[256];
    for (size_t i = 0; i < npix; i++) {
        for (size_t j0 = 0; j0 < natoms; j0 += 16) {
            size_t nj = natoms - j0 < 16 ? natoms - j0 : 16, o0 = j0 * 16;
            for (size_t o = 0; o < nj * 16; o++) {
                a[o] = (int32_t)((uint32_t)acc[i * acc_stride + o0 + o] -
                                 128u * (uint32_t)wsum_w[o0 + o]);   /* the true sum fits */
                ws[o] = s[i];
            }
            k->dpu(f, a, bias + o0, ws, f->ew ? e + j0 * e_stride + i * 16 : no_e,
                   f->ew ? e_stride : 0, out + j0 * out_stride + i * 16, out_stride, nj);
        }
    }
}

void rn_dpu_conv_on(const struct rn_kernel_impl *k, const struct rn_dpu_fast *f,
                    const int32_t *acc, size_t acc_stride, const int32_t *wsum_w,
                    const int32_t *bias, const int32_t *s, const int8_t *e, size_t e_stride,
                    int8_t *out, size_t out_stride, size_t natoms, size_t npix)
{
    if (!k->dpu_conv ||
        !k->dpu_conv(f, acc, acc_stride, wsum_w, bias, s, out, out_stride, natoms, npix)) {
        rn_dpu_conv_by_atoms(k, f, acc, acc_stride, wsum_w, bias, s, e, e_stride, out,
                             out_stride, natoms, npix);
    }
}

void rn_dpu_conv(const struct rn_dpu_fast *f, const int32_t *acc, size_t acc_stride,
                 const int32_t *wsum_w, const int32_t *bias, const int32_t *s, const int8_t *e,
                 size_t e_stride, int8_t *out, size_t out_stride, size_t natoms, size_t npix)
{
    rn_dpu_conv_on(impl(), f, acc, acc_stride, wsum_w, bias, s, e, e_stride, out, out_stride,
                   natoms, npix);
}

bool rn_dpu_int_plan(const struct rn_dpu_fast *f, struct rn_dpu_int *p)
{
    p->narrow = false;
    p->v = 0;
    if (!(f->fits32 && f->trunc <= 30 && !f->ew && f->out_shift >= 16 && f->out_shift <= 32 &&
          f->out_offset > -(1 << 30) && f->out_offset < (1 << 30))) {
        return false;
    }
    /* |RNE(v * scale >> shift)| >= 128 + |offset| from v on: saturated either way */
    int64_t sc = f->out_scale < 0 ? -(int64_t)f->out_scale : f->out_scale;
    int64_t off = f->out_offset < 0 ? -(int64_t)f->out_offset : f->out_offset;
    int64_t v = sc ? ((128 + off) << f->out_shift) / sc + 2 : 0;
    p->narrow = v * sc + (INT64_C(1) << f->out_shift) < (INT64_C(1) << 31);
    p->v = p->narrow ? (int32_t)v : 0;
    return true;
}

bool rn_dw_fold_available(void)
{
    return impl()->dw_fold != NULL;
}

size_t rn_dw_fold_packed_size(size_t taps, size_t n)
{
    size_t groups = (n + 15) / 16;
    return groups * RN_DW_FOLD_PAIRS(taps) * 32 + 2 * n;   /* int16s, then n int32 as pairs */
}

void rn_dw_fold_pack(const int8_t *w, size_t wstride, size_t taps, size_t n, int32_t ow_op,
                     int16_t *packed)
{
    size_t groups = (n + 15) / 16, pairs = RN_DW_FOLD_PAIRS(taps);
    int32_t corr;
    memset(packed, 0, groups * pairs * 32 * sizeof(int16_t));
    for (size_t c = 0; c < n; c++) {
        uint32_t sw = 0;   /* modulo 2^32, as the kernel's sums */
        for (size_t t = 0; t < taps; t++) {
            int32_t v = w[t * wstride + c] + ow_op;   /* |ow_op| < 2^15 - 128: fits int16 */
            packed[(c / 16 * pairs + t / 2) * 32 + 2 * (c % 16) + t % 2] = (int16_t)v;
            sw += (uint32_t)v;
        }
        corr = (int32_t)(0u - 128u * sw);
        memcpy(packed + groups * pairs * 32 + 2 * c, &corr, sizeof(corr));
    }
}

const int32_t *rn_dw_fold_setup(size_t row, size_t col, uint32_t kh, uint32_t kw,
                                const int16_t *packed, size_t n, size_t *off)
{
    size_t taps = (size_t)kh * kw, groups = (n + 15) / 16;
    for (size_t t = 0; t < taps; t++) {
        off[t] = t / kw * row + t % kw * col;
    }
    return (const int32_t *)(const void *)(packed + groups * RN_DW_FOLD_PAIRS(taps) * 32);
}

void rn_dw_fold_tail(const uint8_t *src, size_t step, const size_t *off, size_t taps,
                     const int16_t *packed, const int32_t *corr, int32_t *acc, size_t astride,
                     size_t c0, size_t n, size_t npix)
{
    size_t pairs = RN_DW_FOLD_PAIRS(taps);
    for (size_t c = c0; c < n; c++) {
        const int16_t *wg = packed + c / 16 * pairs * 32 + 2 * (c % 16);
        for (size_t p = 0; p < npix; p++) {
            uint32_t a = (uint32_t)corr[c];   /* modulo 2^32, as the vector sums */
            for (size_t t = 0; t < taps; t++) {
                a += (uint32_t)(src[p * step + off[t] + c] * wg[t / 2 * 32 + t % 2]);
            }
            acc[p * astride + c] = (int32_t)a;
        }
    }
}

void rn_dw_fold(const uint8_t *src, size_t step, size_t row, size_t col, uint32_t kh, uint32_t kw,
                const int16_t *packed, int32_t *acc, size_t astride, size_t n, size_t npix)
{
    impl()->dw_fold(src, step, row, col, kh, kw, packed, acc, astride, n, npix);
}

int32_t rn_sum_s8(const int8_t *p, size_t n)
{
    return impl()->ssum(p, n);
}

void rn_dpu_fast_atom(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                      const int32_t *wsum, const int8_t *e, int8_t *out)
{
    impl()->dpu(f, acc, bias, wsum, e, 0, out, 0, 1);
}

void rn_dpu_fast_atoms(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                       const int32_t *wsum, const int8_t *e, size_t e_stride, int8_t *out,
                       size_t out_stride, size_t n)
{
    impl()->dpu(f, acc, bias, wsum, e, e_stride, out, out_stride, n);
}

void rn_conv_fix(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n, int32_t s,
                 int32_t *fix, int32_t *wsum)
{
    impl()->fix(acc, wsum_w, nk, n, s, fix, wsum);
}

void rn_wgemm(const int32_t *a, size_t lda, size_t npix, const int32_t *packed, size_t nout,
              size_t kp, int64_t *acc)
{
    impl()->wide->gemm(a, lda, npix, packed, nout, kp, acc);
}

size_t rn_wgemm_packed_size(size_t nout, size_t kp)
{
    return impl()->wide->packed_size(nout, kp);
}

void rn_wgemm_pack(const int32_t *w, size_t nout, size_t kp, int32_t *packed)
{
    impl()->wide->pack(w, nout, kp, packed);
}

const char *rn_kernels_isa(void)
{
    return impl()->name;
}
