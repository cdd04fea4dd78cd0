/*
 * Every kernel path this build has and this CPU runs, against plain loops (the GEMMs, depthwise
 * byte sums and conv pixel sums) and against the generic path (the DPU fast path, whose rules test-core checks
 * on the generic path too) on random data. No GLib, so it also runs cross-built under
 * qemu-user (scripts/test-arm64). TAP output.
 *
 *   test-kernels                  the tests, every path (only RKNPU_ISA's when it is set)
 *   test-kernels --info           the CPU, the path in use (RKNPU_ISA) and every path this build has
 *   test-kernels --exec PROG ARG...
 *                                 run PROG when this CPU runs the path RKNPU_ISA names, else
 *                                 print TAP's "1..0 # SKIP" (meson's per-path runs of the tests)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels-impl.h"

static uint32_t seed = 12345;
static unsigned failures, ntest, printed;

static uint32_t rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed ^ (seed >> 16);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        abort();
    }
    return p;
}

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            if (bad++, printed++ < 10) {                                                      \
                printf("# %s: ", k->name);                                                    \
                printf(__VA_ARGS__);                                                          \
                printf("\n");                                                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static void report(const struct rn_kernel_impl *k, const char *what, unsigned bad)
{
    ntest++;
    failures += bad != 0;
    printf("%s %u - %s %s\n", bad ? "not ok" : "ok", ntest, k->name, what);
}

static unsigned gemm_case(const struct rn_kernel_impl *k, size_t npix, size_t no, size_t kp,
                          int extreme)
{
    unsigned bad = 0;
    uint8_t *a = xmalloc(npix * kp);
    int8_t *w = xmalloc(no * kp), *pk = xmalloc(k->packed_size(no, kp));
    int32_t *acc = xmalloc(npix * no * sizeof(int32_t));
    for (size_t i = 0; i < npix * kp; i++) {
        a[i] = extreme ? 255 : (uint8_t)rnd();
    }
    for (size_t i = 0; i < no * kp; i++) {
        w[i] = extreme ? (int8_t)(i & 1 ? 127 : -128) : (int8_t)rnd();
    }
    k->pack(w, no, kp, pk);
    k->gemm(a, npix, pk, no, kp, acc);
    for (size_t p = 0; p < npix; p++) {
        for (size_t o = 0; o < no; o++) {
            int32_t want = 0;
            for (size_t i = 0; i < kp; i++) {
                want += a[p * kp + i] * w[o * kp + i];
            }
            CHECK(acc[p * no + o] == want, "gemm npix %zu nout %zu kp %zu: [%zu][%zu] %d != %d",
                  npix, no, kp, p, o, acc[p * no + o], want);
        }
    }
    free(a), free(w), free(pk), free(acc);
    return bad;
}

static void test_gemm(const struct rn_kernel_impl *k)
{
    static const size_t kps[] = { 4, 8, 12, 16, 20, 28, 32, 36, 60, 64, 72, 100, 132, 144, 1024,
                                  1028, 1036, 2060 };
    unsigned bad = 0;
    for (size_t npix = 1; npix <= 11; npix++) {
        for (size_t no = 4; no <= 60; no += 4) {
            for (size_t i = 0; i < sizeof(kps) / sizeof(kps[0]); i++) {
                if (kps[i] > 200 && (npix % 4 != 1 || no % 12 != 4)) {
                    continue;   /* the long rows on fewer shapes */
                }
                bad += gemm_case(k, npix, no, kps[i], 0);
            }
        }
    }
    bad += gemm_case(k, 5, 20, 2060, 1);   /* the largest sums of products */
    bad += gemm_case(k, 70, 36, 300, 0);   /* more pixels than one block of the AVX2 GEMM */
    bad += gemm_case(k, 131, 16, 20, 0);
    report(k, "gemm", bad);
}

/* rn_gemm_pack_fold: weights w + ow before kreal, w (0) past it; any bytes in the rows */
static unsigned gemm_fold_case(const struct rn_kernel_impl *k, size_t npix, size_t no,
                               size_t kp, size_t kreal, int32_t ow)
{
    unsigned bad = 0;
    uint8_t *a = xmalloc(npix * kp);
    int8_t *w = xmalloc(no * kp), *pk = xmalloc(k->packed_size(no, kp));
    int32_t *acc = xmalloc(npix * no * sizeof(int32_t));
    for (size_t i = 0; i < npix * kp; i++) {
        a[i] = (uint8_t)rnd();
    }
    for (size_t i = 0; i < no * kp; i++) {
        w[i] = i % kp < kreal ? (int8_t)rnd() : 0;
    }
    k->pack_fold(w, no, kp, kreal, ow, pk);
    k->gemm(a, npix, pk, no, kp, acc);
    for (size_t p = 0; p < npix; p++) {
        for (size_t o = 0; o < no; o++) {
            uint32_t want = 0;   /* modulo 2^32, as the GEMM's int32 sums */
            for (size_t i = 0; i < kreal; i++) {
                want += (uint32_t)(a[p * kp + i] * (w[o * kp + i] + ow));
            }
            CHECK(acc[p * no + o] == (int32_t)want, "gemm fold npix %zu nout %zu kp %zu kreal "
                  "%zu ow %d: [%zu][%zu]", npix, no, kp, kreal, ow, p, o);
        }
    }
    free(a), free(w), free(pk), free(acc);
    return bad;
}

static void test_gemm_fold(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    if (!k->pack_fold) {
        return;
    }
    for (int round = 0; round < 200; round++) {
        size_t kp = 4 * (1 + rnd() % (round % 10 ? 40 : 300)), kreal = kp - rnd() % 4;
        int32_t ow = round % 3 ? (int32_t)(rnd() % 81) - 40 : (int32_t)(rnd() % 65281) - 32640;
        if (round % 20 == 0) {
            ow = round % 40 ? 32639 : -32640;
        }
        bad += gemm_fold_case(k, 1 + rnd() % 70, 4 * (1 + rnd() % 20), kp, kreal, ow);
    }
    report(k, "gemm, CPEND folded", bad);
}

/*
 * The wide MAC's int64 GEMM against a plain loop; lda > kp (a K slice of longer rows, as mac.c
 * passes them); extreme: +-2^31-scale elements, whose sums wrap modulo 2^64 on every path alike.
 */
static unsigned wgemm_case(const struct rn_kernel_impl *k, size_t npix, size_t no, size_t kp,
                           size_t lda, int extreme)
{
    unsigned bad = 0;
    const struct rn_wide_impl *wk = k->wide;
    int32_t *a = xmalloc(npix * lda * 4), *w = xmalloc(no * kp * 4);
    int32_t *pk = xmalloc(wk->packed_size(no, kp));
    int64_t *acc = xmalloc(npix * no * 8);
    for (size_t i = 0; i < npix * lda; i++) {
        a[i] = extreme ? (i & 2 ? INT32_MIN : INT32_MAX) : (int32_t)rnd() >> (rnd() % 31);
    }
    for (size_t i = 0; i < no * kp; i++) {
        w[i] = extreme ? INT32_MIN : (int32_t)rnd() >> (rnd() % 31);
    }
    wk->pack(w, no, kp, pk);
    wk->gemm(a, lda, npix, pk, no, kp, acc);
    for (size_t p = 0; p < npix; p++) {
        for (size_t o = 0; o < no; o++) {
            uint64_t want = 0;
            for (size_t i = 0; i < kp; i++) {
                want += (uint64_t)((int64_t)a[p * lda + i] * w[o * kp + i]);
            }
            CHECK(acc[p * no + o] == (int64_t)want,
                  "wgemm npix %zu nout %zu kp %zu lda %zu: [%zu][%zu] %lld != %lld", npix, no, kp,
                  lda, p, o, (long long)acc[p * no + o], (long long)want);
        }
    }
    free(a), free(w), free(pk), free(acc);
    return bad;
}

static void test_wgemm(const struct rn_kernel_impl *k)
{
    static const size_t kps[] = { 1, 2, 3, 7, 16, 33, 256, 1000 };
    unsigned bad = 0;
    for (size_t npix = 1; npix <= 9; npix++) {
        for (size_t no = 1; no <= 50; no += 1 + no / 4) {
            for (size_t i = 0; i < sizeof(kps) / sizeof(kps[0]); i++) {
                if (kps[i] > 100 && (npix % 4 != 1 || no % 3 != 1)) {
                    continue;   /* the long rows on fewer shapes */
                }
                bad += wgemm_case(k, npix, no, kps[i], kps[i] + (npix & 1) * 5, 0);
            }
        }
    }
    bad += wgemm_case(k, 5, 33, 300, 300, 1);
    report(k, "wide gemm", bad);
}

static void test_dw(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    static const uint32_t ks[][2] = { { 1, 1 }, { 3, 3 }, { 5, 5 }, { 1, 7 }, { 16, 16 }, { 17, 17 } };
    for (size_t n = 1; n <= 70; n += (n < 34 ? 1 : 9)) {
        for (size_t t = 0; t < sizeof(ks) / sizeof(ks[0]); t++) {
            uint32_t kh = ks[t][0], kw = ks[t][1];
            size_t col = n + rnd() % 3, row = (kw + 2) * col, wstride = n + rnd() % 2;
            size_t taps = (size_t)kh * kw;
            uint8_t *src = xmalloc(kh * row);
            int8_t *w = xmalloc(taps * wstride);
            int32_t *acc = xmalloc(n * 4), *sum = xmalloc(n * 4);
            int32_t *acc2 = xmalloc(n * 4), *sum2 = xmalloc(n * 4);
            for (size_t i = 0; i < kh * row; i++) {
                /* 16x16: the int16 window sums' extreme, -128 * 256; 17x17: past it */
                src[i] = taps == 256 || (taps > 256 && i % 2) ? 0 : (uint8_t)rnd();
            }
            for (size_t i = 0; i < taps * wstride; i++) {
                w[i] = (int8_t)rnd();
            }
            for (size_t c = 0; c < n; c++) {
                acc[c] = acc2[c] = (int32_t)rnd() >> 4;
                sum[c] = sum2[c] = (int32_t)rnd() >> 8;
            }
            k->dw_pixel(src, row, col, kh, kw, w, wstride, acc, sum, n);
            for (uint32_t ky = 0; ky < kh; ky++) {
                for (uint32_t kx = 0; kx < kw; kx++) {
                    for (size_t c = 0; c < n; c++) {
                        int32_t x = (int32_t)src[ky * row + kx * col + c] - 128;
                        acc2[c] += x * w[(ky * kw + kx) * wstride + c];
                        sum2[c] += x;
                    }
                }
            }
            for (size_t c = 0; c < n; c++) {
                CHECK(acc[c] == acc2[c] && sum[c] == sum2[c],
                      "dw_pixel %ux%u n %zu: [%zu] %d/%d != %d/%d", kh, kw, n, c, acc[c], sum[c],
                      acc2[c], sum2[c]);
            }
            /* one tap */
            k->dw(src, w, acc, sum, n);
            for (size_t c = 0; c < n; c++) {
                int32_t x = (int32_t)src[c] - 128;
                acc2[c] += x * w[c];
                sum2[c] += x;
                CHECK(acc[c] == acc2[c] && sum[c] == sum2[c], "dw n %zu: [%zu]", n, c);
            }
            free(src), free(w), free(acc), free(sum), free(acc2), free(sum2);
        }
    }
    report(k, "depthwise", bad);
}

/* The folded depthwise against plain sums of (x - 128) * w and ow_op * (x - 128). */
static void test_dw_fold(const struct rn_kernel_impl *k)
{
    static const size_t ns[] = { 16, 32, 48, 5, 17, 40 };
    unsigned bad = 0;
    if (!k->dw_fold) {
        return;
    }
    for (int round = 0; round < 300; round++) {
        uint32_t kh = 1 + rnd() % 5, kw = 1 + rnd() % 5;
        if (round % 50 == 0) {
            kh = 32, kw = 1 + rnd() % 32;
        }
        size_t n = ns[round % 6], ci = n + rnd() % 3, npix = 1 + rnd() % 9, sx = 1 + rnd() % 2;
        size_t wp = (npix - 1) * sx + kw, row = wp * ci, taps = (size_t)kh * kw;
        size_t as = n + 4 * (rnd() % 3), tile = kh * row;
        int32_t ow = rnd() % 3 ? (int32_t)(rnd() % 81) - 40 : (int32_t)(rnd() % 65280) - 32640;
        uint8_t *src = xmalloc(tile);
        int8_t *w = xmalloc(taps * ci);
        int16_t *pk = xmalloc(rn_dw_fold_packed_size(taps, n) * sizeof(int16_t));
        int32_t *acc = xmalloc(npix * as * sizeof(int32_t));
        for (size_t i = 0; i < tile; i++) {
            src[i] = round % 7 == 0 ? (rnd() & 1 ? 255 : 0) : (uint8_t)rnd();
        }
        for (size_t i = 0; i < taps * ci; i++) {
            w[i] = round % 7 == 0 ? (rnd() & 1 ? 127 : -128) : (int8_t)rnd();
        }
        for (size_t i = 0; i < npix * as; i++) {
            acc[i] = 0x5A5A5A5A;
        }
        rn_dw_fold_pack(w, ci, taps, n, ow, pk);
        k->dw_fold(src, sx * ci, row, ci, kh, kw, pk, acc, as, n, npix);
        for (size_t p = 0; p < npix; p++) {
            for (size_t c = 0; c < as; c++) {
                int64_t want = 0x5A5A5A5A;
                if (c < n) {
                    int64_t m = 0, sum = 0;
                    for (size_t t = 0; t < taps; t++) {
                        size_t at = p * sx * ci + t / kw * row + t % kw * ci + c;
                        int32_t x = (int32_t)src[at] - 128;
                        m += (int64_t)x * w[t * ci + c];
                        sum += x;
                    }
                    want = (int32_t)(uint32_t)(uint64_t)(m + ow * sum);
                }
                CHECK(acc[p * as + c] == want, "dw fold %ux%u n %zu ow %d: pixel %zu [%zu]", kh, kw,
                      n, ow, p, c);
            }
        }
        free(src), free(w), free(pk), free(acc);
    }
    report(k, "depthwise, CPEND folded", bad);
}

static void test_sum(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    uint8_t *p = xmalloc(5000);
    for (size_t n = 0; n < 5000; n += 1 + n / 7) {
        uint32_t want = 0;
        for (size_t i = 0; i < n; i++) {
            p[i] = n > 4000 ? 255 : (uint8_t)rnd();
            want += p[i];
        }
        CHECK(k->sum(p, n) == want, "sum n %zu", n);
    }
    free(p);
    report(k, "byte sums", bad);
}

static void test_ssum(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    int8_t *p = xmalloc(5000);
    for (size_t n = 0; n < 5000; n += 1 + n / 7) {
        int32_t want = 0;
        for (size_t i = 0; i < n; i++) {
            p[i] = n > 4000 ? (n & 1 ? 127 : -128) : (int8_t)rnd();
            want += p[i];
        }
        CHECK(k->ssum(p, n) == want, "signed sum n %zu", n);
    }
    free(p);
    report(k, "signed byte sums", bad);
}

/* r in [-m, m], the ends often */
static int32_t within(int64_t m)
{
    switch (rnd() % 4) {
    case 0: return (int32_t)m;
    case 1: return (int32_t)-m;
    default: {
        uint64_t r = (uint64_t)rnd() << 32 | rnd();
        return (int32_t)((int64_t)(r % (uint64_t)(2 * m + 1)) - m);
    }
    }
}

/*
 * A task the int8 MAC could give (rn_dpu_fast.fits32): K products per lane, so |acc| <= 2^14 K,
 * |wsum| <= 2^7 K, and |acc + ow_op * wsum| + |bias| < 2^31. Returns K; *bmax: the bias bound.
 */
static int64_t pick_bound(const struct rn_dpu_fast *f, int64_t *bmax)
{
    int64_t per = (1 << 14) + 128 * (int64_t)(f->ow_op < 0 ? -f->ow_op : f->ow_op);
    int64_t kmax = ((INT64_C(1) << 31) - 1) / per, kk = 1 + rnd() % (rnd() % 2 ? kmax : 64);
    *bmax = (INT64_C(1) << 31) - 1 - kk * per;
    *bmax = rnd() % 3 ? *bmax : *bmax % 100000;
    return kk;
}

/*
 * Often make out_scale a power of two 2^j and return m = out_shift - 1 - j, so that values on
 * multiples of 2^m land on the output rounding's ties half the time; else -1.
 */
static int tie_grid(struct rn_dpu_fast *f)
{
    if (rnd() % 2) {
        return -1;
    }
    int j = (int)(rnd() % 15);
    f->out_shift = 16 + rnd() % 17;
    f->out_scale = (int16_t)(rnd() % 2 ? 1 << j : -(1 << j));
    return (int)f->out_shift - 1 - j <= 30 ? (int)f->out_shift - 1 - j : -1;
}

/*
 * With CLIP_TRUNCATE on, often scale the output by 1/2 or 1/4 and keep the sums near 2^trunc
 * (*lim), on multiples of 2^(trunc - 1): its ties then show in the bytes. Returns that grid's
 * m, else -1 (no change).
 */
static int trunc_visible(struct rn_dpu_fast *f, int64_t *lim)
{
    if (!f->trunc || f->trunc > 28 || rnd() % 2) {
        return -1;
    }
    f->out_scale = (int16_t)(rnd() % 2 ? 1 << 14 : -(1 << 14));
    f->out_shift = 15 + rnd() % 2;
    f->ow_op = (int16_t)(rnd() % 5) - 2;
    f->out_offset = (int32_t)(rnd() % 64) - 32;
    *lim = INT64_C(1) << (f->trunc < 22 ? f->trunc + 7 : 29);   /* fits32: < 2^30 in all */
    return (int)f->trunc - 1;
}

/* v to a multiple of 2^m (m < 0: v), toward zero so that the bounds hold */
static int32_t snap(int32_t v, int m)
{
    return m < 0 ? v : v / (1 << m) * (1 << m);
}

static int32_t pick32(void)
{
    switch (rnd() % 5) {
    case 0: return (int32_t)rnd();                        /* anything */
    case 4: return (int32_t)((rnd() % 64) - 32) * (1 << (rnd() % 25));   /* rounding ties */
    case 1: return (int32_t)rnd() >> (rnd() % 31);        /* any magnitude */
    case 2: return rnd() & 1 ? INT32_MAX - (int32_t)(rnd() % 3) : INT32_MIN + (int32_t)(rnd() % 3);
    default: return (int32_t)(rnd() % 64) - 32;
    }
}

static void test_dpu(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    for (int round = 0; round < 40000; round++) {
        struct rn_dpu_fast f = {
            .ow_op = rnd() % 4 ? (int16_t)rnd() : 0,
            .trunc = rnd() % 3 ? 0 : rnd() % 63,
            .trunc_half_up = rnd() & 1,
            .ew = rnd() & 1,
            .ew_offset = (int32_t)(rnd() % (2u << 30)) - (1 << 30) + 1,
            .ew_scale = (int16_t)rnd(),
            .ew_shift = 1 + rnd() % 62,
            .out_scale = rnd() % 4 ? (int16_t)rnd() : (int16_t)(1 << (rnd() % 15)),
            .out_offset = rnd() % 2 ? (int32_t)(rnd() % 256) - 128 : pick32(),
            .out_shift = 1 + rnd() % 62,
        };
        if (rnd() % 2) {   /* shifts that keep outputs off the rails, so rounding shows */
            f.out_shift = 14 + rnd() % 20;
            f.ew_shift = 1 + rnd() % 20;
        }
        int64_t kk = 0, bmax = 0;
        int m = -1;
        if (round % 3 == 2) {   /* values the int8 MAC gives: the paths' int32 forms */
            f.fits32 = true;
            f.ew = rnd() % 4 == 0;
            f.trunc = rnd() % 2 ? 0 : rnd() % 32;
            kk = pick_bound(&f, &bmax);
            m = f.trunc ? -1 : tie_grid(&f);
        }
        int64_t lim = 0;
        int mt = f.fits32 ? trunc_visible(&f, &lim) : -1;
        /* 3 atoms, the EW operand and the outputs at strides 32 and 24 */
        int32_t acc[48], bias[48], wsum[48];
        int8_t e[96], out[72], want[72];
        e[0] = (int8_t)rnd();
        if (round % 2) {   /* one e for all lanes, and (e + offset) * scale a rounding tie */
            f.ew_offset = (int32_t)(rnd() % 64) * (1 << (rnd() % 20)) - e[0];
            f.ew_scale = 1 << (rnd() % 4);
        }
        for (int l = 0; l < 48; l++) {
            acc[l] = kk ? snap(within(kk << 14), m) : pick32();
            bias[l] = kk ? snap(within(bmax), m) : pick32();
            wsum[l] = kk ? snap(within(kk << 7), m) : pick32();
            if (mt >= 0) {   /* small sums on the truncation's ties (|ow_op| <= 2) */
                acc[l] = snap(within(lim), mt);
                wsum[l] = snap(within(2 << mt), mt);
                bias[l] = within(100);
            }
        }
        for (int l = 0; l < 96; l++) {
            e[l] = round % 2 ? e[0] : (int8_t)rnd();
        }
        memset(out, 0x55, sizeof(out));
        memset(want, 0x55, sizeof(want));
        k->dpu(&f, acc, bias, wsum, e, 32, out, 24, 3);
        rn_kernels_generic.dpu(&f, acc, bias, wsum, e, 32, want, 24, 3);
        for (int l = 0; l < 72; l++) {
            CHECK(out[l] == want[l], "dpu round %d byte %d: %d != %d (trunc %u ew %d)", round, l,
                  out[l], want[l], f.trunc, f.ew);
        }
    }
    report(k, "dpu fast path", bad);
}

/* A GEMM block's DPU against the generic dpu entry run a pixel at a time on the fixed sums. */
static void test_dpu_conv(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    for (int round = 0; round < 4000; round++) {
        size_t na = 1 + rnd() % 3, np = 1 + rnd() % 9, as = 16 * na + 4 * (rnd() % 3);
        size_t es = 16 * np + 16 * (rnd() % 2), os = 16 * np + 16 * (rnd() % 2);
        struct rn_dpu_fast f = {
            .ow_op = rnd() % 4 ? (int16_t)rnd() : 0,
            .trunc = rnd() % 2 ? 0 : rnd() % (round % 2 ? 31 : 63),
            .trunc_half_up = rnd() & 1,
            .ew = rnd() % 3 == 0,
            .ew_offset = (int32_t)(rnd() % 512) - 256,
            .ew_scale = (int16_t)rnd(),
            .ew_shift = 1 + rnd() % 30,
            .out_scale = (int16_t)rnd(),
            .out_offset = rnd() % 2 ? (int32_t)(rnd() % 256) - 128 : pick32() >> 1,
            .out_shift = rnd() % 4 ? 14 + rnd() % 20 : 1 + rnd() % 62,
            .fits32 = round % 4 != 0,
        };
        int m = f.trunc ? -1 : tie_grid(&f);
        int64_t bmax = 0, lim = 0;
        int mt = f.fits32 ? trunc_visible(&f, &lim) : -1;
        int64_t kk = pick_bound(&f, &bmax);
        int32_t acc[9 * 60], ww[48], bias[48], s[9], a[48], ws[48];
        int8_t e[3 * 176], out[3 * 176], want[3 * 176];
        for (size_t o = 0; o < 16 * na; o++) {
            ww[o] = within(kk << 7);
            bias[o] = mt >= 0 ? within(100) : f.fits32 ? snap(within(bmax), m) : pick32();
        }
        for (size_t i = 0; i < np; i++) {
            s[i] = mt >= 0 ? snap(within(2 << mt), mt) : snap(within(kk << 7), m);
            for (size_t o = 0; o < 16 * na; o++) {   /* raw sums: the true one + 128 * ww */
                int32_t t = mt >= 0 ? snap(within(lim), mt) : snap(within(kk << 14), m);
                acc[i * as + o] = (int32_t)((uint32_t)t + 128u * (uint32_t)ww[o]);
            }
        }
        for (size_t i = 0; i < sizeof(e); i++) {
            e[i] = (int8_t)rnd();
        }
        memset(out, 0x55, sizeof(out));
        memset(want, 0x55, sizeof(want));
        rn_dpu_conv_on(k, &f, acc, as, ww, bias, s, e, es, out, os, na, np);
        for (size_t i = 0; i < np; i++) {
            for (size_t o = 0; o < 16 * na; o++) {
                a[o] = (int32_t)((uint32_t)acc[i * as + o] - 128u * (uint32_t)ww[o]);
                ws[o] = s[i];
            }
            rn_kernels_generic.dpu(&f, a, bias, ws, e + i * 16, es, want + i * 16, os, na);
        }
        for (size_t l = 0; l < sizeof(out); l++) {
            CHECK(out[l] == want[l], "dpu conv round %d byte %zu: %d != %d (trunc %u ew %d "
                  "shift %u fits32 %d)", round, l, out[l], want[l], f.trunc, f.ew, f.out_shift,
                  f.fits32);
        }
    }
    report(k, "dpu of a conv block", bad);
}

static void test_fix(const struct rn_kernel_impl *k)
{
    unsigned bad = 0;
    int32_t acc[100], ws[100], fix[100], wsum[100];
    for (size_t n = 0; n <= 100; n += 1 + n / 5) {
        for (size_t nk = 0; nk <= n; nk += 1 + nk / 3) {
            int32_t s = (int32_t)rnd() >> 12;
            for (size_t o = 0; o < 100; o++) {
                acc[o] = (int32_t)rnd() >> 2;
                ws[o] = (int32_t)rnd() >> 12;
                fix[o] = wsum[o] = 77;
            }
            k->fix(acc, ws, nk, n, s, fix, wsum);
            for (size_t o = 0; o < 100; o++) {
                int32_t f = o < nk ? acc[o] - 128 * ws[o] : o < n ? 0 : 77;
                CHECK(fix[o] == f && wsum[o] == (o < n ? s : 77), "fix n %zu nk %zu: [%zu]", n,
                      nk, o);
            }
        }
    }
    report(k, "conv pixel sums", bad);
}

static void info(void)
{
    char line[256], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (colon && !strncmp(line, "model name", 10)) {
            snprintf(model, sizeof(model), "%s", colon + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    const struct rn_kernel_impl *k = rn_kernels_get(rn_kernels_isa());
    printf("cpu: %s\n", model);
    printf("kernels: %s%s%s%s\n", rn_kernels_isa(), k && k->note ? " (" : "",
           k && k->note ? k->note : "", k && k->note ? ")" : "");
    printf("paths:");
    bool runs;
    for (size_t i = 0; rn_kernels_path(i, &runs); i++) {
        printf(" %s%s", rn_kernels_path(i, &runs), runs ? "" : "(cannot run)");
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    bool runs;
    const char *only = getenv("RKNPU_ISA");
    if (argc > 1 && !strcmp(argv[1], "--info")) {
        info();
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "--exec")) {
        if (only && strcmp(only, rn_kernels_isa())) {
            printf("1..0 # SKIP this CPU does not run the %s kernels\n", only);
            return 0;
        }
        execv(argv[2], argv + 2);
        perror(argv[2]);
        return 1;
    }
    printf("# kernels in use: %s\n", rn_kernels_isa());
    for (size_t i = 0; rn_kernels_path(i, &runs); i++) {
        const char *name = rn_kernels_path(i, &runs);
        const struct rn_kernel_impl *k = rn_kernels_get(name);
        if (!runs || (only && strcmp(only, name))) {
            printf("# %s: %s\n", name, runs ? "not asked for (RKNPU_ISA)" : "this CPU cannot run it");
            continue;
        }
        if (k->note) {
            printf("# %s: %s\n", name, k->note);
        }
        test_gemm(k);
        test_gemm_fold(k);
        test_wgemm(k);
        test_dw(k);
        test_dw_fold(k);
        test_sum(k);
        test_ssum(k);
        test_dpu(k);
        test_dpu_conv(k);
        test_fix(k);
    }
    printf("1..%u\n", ntest);
    return failures ? 1 : 0;
}
