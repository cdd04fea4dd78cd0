/*
 * The CORE MAC's vector path (mac-vec.c on this run's GEMM kernels: meson runs it once per
 * RKNPU_ISA path, scripts/test-arm64 on the NEON ones) against the scalar sums that are the rule
 * (mac.c, rn_mac_scalar_only): the same task through both must write the same bytes. Random
 * convolutions and matmuls of every precision of HARDWARE-UNKNOWNS Q19 (depthwise: fp16), with
 * data that the vector path takes (narrow exponent ranges), that it must hand back (wide ranges:
 * the window of 31 bits a row, of 63 a pair's sum, of 53 a depthwise channel's), and the edges:
 * inf, NaN, subnormals, zeros, sums at the bottom and top of fp32's range, and pairs right at
 * the 63-bit bound with every product at its largest.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "conv.h"   /* rn_mac_scalar_only */
#include "progs.h"
#include "rknpu.h"

#include "testlib.h"

enum { INT16 = 1, FP16 = 2, BF16 = 3, INT4 = 6, TF32 = 7 };
#define SRC 0x1000u
#define WT 0x40000u
#define DST 0x80000u
#define OUT_MAX 0x70000u

static uint32_t seed = 2024;

static uint32_t rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed ^ (seed >> 15);
}

static uint32_t below(uint32_t n)
{
    return n ? rnd() % n : 0;
}

/* How a case draws its elements: a window of exponents [lo, lo + span], a share of specials. */
struct dist {
    int lo, span;
    unsigned inf_nan, zeros, subnormal;   /* per 1000 elements */
    bool max_mantissa;                    /* every mantissa all ones, every sign +: the largest
                                           * sums */
};

/* A raw element of precision prec drawn from dist (floats: 2^e · 1.f, e in the window). */
static uint32_t element(uint32_t prec, const struct dist *ds)
{
    uint32_t r = below(1000), s = ds->max_mantissa ? 0 : rnd() & 1;
    uint32_t f = ds->max_mantissa ? ~0u : rnd();
    int e = ds->lo + (int)below((uint32_t)ds->span + 1);
    if (prec == INT4 || prec == INT16) {
        uint32_t bits = prec == INT4 ? 4 : 16, top = 1u << (bits - 1);
        uint32_t v = r < 100 ? top : r < 200 ? top - 1 : rnd();   /* the rails often */
        return (s ? 0u - v : v) & ((1u << bits) - 1);
    }
    if (r < ds->zeros) {
        return s << (prec == TF32 ? 31 : 15);
    }
    r -= ds->zeros;
    if (prec == FP16) {
        uint32_t ex = r < ds->subnormal ? 0 : (uint32_t)(e + 15 < 1 ? 1 : e + 15 > 30 ? 30 : e + 15);
        ex = r >= ds->subnormal && r < ds->subnormal + ds->inf_nan ? 31 : ex;
        return s << 15 | ex << 10 | (f & 0x3FF) | (ex == 0 && !(f & 0x3FF) ? 1 : 0);
    }
    uint32_t ex = r < ds->subnormal ? 0 : (uint32_t)(e + 127 < 1 ? 1 : e + 127 > 254 ? 254 : e + 127);
    ex = r >= ds->subnormal && r < ds->subnormal + ds->inf_nan ? 255 : ex;
    if (prec == BF16) {
        return s << 15 | ex << 7 | (f & 0x7F) | (ex == 0 && !(f & 0x7F) ? 1 : 0);
    }
    /* tf32: an fp32 container whose low 13 bits the MAC rounds away (a carry may reach inf) */
    return s << 31 | ex << 23 | (f & 0x7FFFFF) | (ex == 0 ? 1u << 13 : 0);
}

static void put(uint32_t at, uint64_t i, uint32_t bits, uint32_t v)
{
    if (bits == 4) {
        uint8_t *b = &mem[at + i / 2];
        *b = (uint8_t)(i & 1 ? (*b & 0x0F) | v << 4 : (*b & 0xF0) | (v & 0xF));
        return;
    }
    for (uint32_t j = 0; j < bits / 8; j++) {
        mem[at + i * (bits / 8) + j] = (uint8_t)(v >> (8 * j));
    }
}

/* Run the task in mem on a fresh core; returns its output bytes (and checks it completed). */
static uint8_t *run(const struct rp_conv *cv, bool scalar)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_prog p = { .n = 0 };
    uint64_t e[RP_MAX_WRITES + 3];
    size_t out = rp_conv_out_bytes(cv);
    uint8_t *got = g_malloc(out);
    unsigned n;
    rn_core_init(&c);
    c.log = count_log;
    rp_conv_regs(cv, &p);
    n = rp_regcmd(&p, 0x0D, e);
    for (unsigned i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            mem[8 * i + b] = (uint8_t)(e[i] >> (8 * b));
        }
    }
    memset(mem + DST, 0xA5, out);
    rn_mac_scalar_only = scalar;
    kick(&c, 0, n, 0x7001, &res);
    rn_mac_scalar_only = false;
    g_assert_false(res.hang);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    memcpy(got, mem + DST, out);
    rn_core_destroy(&c);
    return got;
}

/* One task, data from din (feature) and dw (weights): vector and scalar sums agree. */
static void check(const struct rp_conv *cv, const struct dist *din, const struct dist *dwt)
{
    struct rp_prec q = rp_prec_of(cv->prec);
    size_t nf = rp_conv_feature_bytes(cv) * 8 / q.bits, nw = rp_conv_weight_bytes(cv) * 8 / q.bits;
    uint8_t *vec, *scalar;
    g_assert_cmpuint(rp_conv_feature_bytes(cv), <=, WT - SRC);
    g_assert_cmpuint(rp_conv_weight_bytes(cv), <=, DST - WT);
    g_assert_cmpuint(rp_conv_out_bytes(cv), <=, OUT_MAX);
    memset(mem + SRC, 0, DST - SRC);
    for (size_t i = 0; i < nf; i++) {
        put(SRC, i, q.bits, element(cv->prec, din));
    }
    for (size_t i = 0; i < nw; i++) {
        put(WT, i, q.bits, element(cv->prec, dwt));
    }
    vec = run(cv, false);
    scalar = run(cv, true);
    if (memcmp(vec, scalar, rp_conv_out_bytes(cv))) {
        for (size_t i = 0; i < rp_conv_out_bytes(cv); i++) {
            if (vec[i] != scalar[i]) {
                g_printerr("prec %u %ux%ux%u k %u %ux%u s%u p%u%s: byte %zu: %02x != %02x\n",
                           cv->prec, cv->w, cv->h, cv->c, cv->k, cv->kh, cv->kw, cv->stride,
                           cv->pad, cv->row_major ? " row-major" : "", i, vec[i], scalar[i]);
                break;
            }
        }
        g_assert_not_reached();
    }
    g_free(vec), g_free(scalar);
}

static const uint32_t precs[] = { INT4, INT16, FP16, BF16, TF32 };

/* A random shape that fits the memory and the CBUF: a conv, or a row-major matmul. */
static struct rp_conv shape(uint32_t prec, bool long_rows)
{
    struct rp_conv cv = { .prec = prec, .src = SRC, .wt = WT, .dst = DST };
    uint32_t c2 = 128 / rp_prec_of(prec).bits;
    if (long_rows || below(3) == 0) {   /* a matmul: rows of whole atoms, K across slices */
        cv.row_major = true;
        cv.w = 1, cv.h = 1 + below(24), cv.kh = cv.kw = cv.stride = 1;
        cv.c = c2 * (1 + below(long_rows ? 1200 / c2 : 40));
        cv.k = 1 + below(long_rows ? 20 : 70);
        return cv;
    }
    cv.w = 1 + below(9), cv.h = 1 + below(6), cv.c = 1 + below(70), cv.k = 1 + below(40);
    cv.kh = 1 + below(3), cv.kw = 1 + below(3), cv.stride = 1 + below(2);
    cv.pad = cv.kh > 1 && cv.kw > 1 ? below(2) : 0;
    cv.w = cv.w + 2 * cv.pad < cv.kw ? cv.kw : cv.w;
    cv.h = cv.h + 2 * cv.pad < cv.kh ? cv.kh : cv.h;
    return cv;
}

/* Narrow windows (the vector path's), wide ones (the scalar sums'), and spans between. */
static void test_random(void)
{
    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < G_N_ELEMENTS(precs); i++) {
            struct rp_conv cv = shape(precs[i], round % 8 == 7);
            int lo = -20 + (int)below(30), span = (int)below(round % 4 == 3 ? 60 : 20);
            struct dist a = { lo, span, 0, below(300), below(20), false };
            struct dist b = { -(int)below(12), (int)below(18), 0, below(100), 0, false };
            if (precs[i] != FP16) {   /* bf16, tf32: fp32's exponents, to the ends */
                a.lo = round % 5 == 4 ? -140 + (int)below(20) : -60 + (int)below(120);
                b.lo = round % 5 == 4 ? -120 : -(int)below(60);
            }
            check(&cv, &a, &b);
        }
    }
}

/* fp16 depthwise: each channel's taps in a double, or the scalar sums past its exponents. */
static void test_depthwise(void)
{
    for (int round = 0; round < 30; round++) {
        struct rp_conv cv = shape(FP16, false);
        struct dist a = { -14 + (int)below(10), (int)below(round % 3 ? 12 : 30), round % 4 ? 0 : 3,
                          below(300), below(40), false };
        struct dist b = { -6, (int)below(round % 2 ? 8 : 25), round % 5 ? 0 : 5, below(200), 0,
                          false };
        cv.row_major = false;
        cv.dw = true;
        cv.w = cv.w < cv.kw ? cv.kw : cv.w, cv.h = cv.h < cv.kh ? cv.kh : cv.h;
        cv.c = 1 + below(90);
        cv.k = cv.c;
        check(&cv, &a, &b);
    }
}

/* inf and NaN in some rows (the scalar sums decide them), subnormals, zeros, whole zero rows. */
static void test_specials(void)
{
    for (int round = 0; round < 12; round++) {
        for (size_t i = 2; i < G_N_ELEMENTS(precs); i++) {
            struct rp_conv cv = shape(precs[i], false);
            struct dist a = { -8, 8, round % 3 ? 2 : 0, round % 4 ? 100 : 1000, 50, false };
            struct dist b = { -3, 6, round % 3 == 1 ? 0 : 3, round % 5 ? 50 : 1000, 30, false };
            check(&cv, &a, &b);
        }
    }
}

/*
 * Pairs at the 63-bit bound: matmuls with K 256 (one slice: 2^8 products), every mantissa all
 * ones, every sign +, every exponent at its row's top but channel 0's: a pixel's row spans
 * `span` exponents, a kernel's span + 1, so a pair's bits add to an odd 2 (span + fb + 1) + 9
 * and its sum nears 2^63 where that is 63 (fp16 span 16, bf16 19): the largest exact int64
 * sums, then one past them. Then sums below 2^-126 and past fp32's range (bf16 at the ends).
 */
static void test_bounds(void)
{
    for (size_t i = 2; i < G_N_ELEMENTS(precs); i++) {
        uint32_t prec = precs[i], bits = rp_prec_of(prec).bits, kg = prec == TF32 ? 16 : 32;
        struct rp_conv cv = { .prec = prec, .w = 1, .h = 4, .c = 256, .k = 8, .kh = 1, .kw = 1,
                              .stride = 1, .row_major = true, .src = SRC, .wt = WT, .dst = DST };
        for (int span = 12; span <= 22; span++) {
            struct dist low = { 2, 0, 0, 0, 0, true }, top = { 2 + span, 0, 0, 0, 0, true };
            struct dist wtop = { 3 + span, 0, 0, 0, 0, true };
            uint8_t *vec, *scalar;
            memset(mem + SRC, 0, DST - SRC);
            for (uint32_t y = 0; y < cv.h; y++) {   /* row-major: element y·c + ch */
                for (uint32_t ch = 0; ch < cv.c; ch++) {
                    put(SRC, y * cv.c + ch, bits, element(prec, ch ? &top : &low));
                }
            }
            for (uint32_t o = 0; o < cv.k; o++) {   /* Q19's 1x1 tiles: K < the N-group */
                for (uint32_t ch = 0; ch < cv.c; ch++) {
                    put(WT, ch / kg * cv.k * kg + o * kg + ch % kg, bits,
                        element(prec, ch ? &wtop : &low));
                }
            }
            vec = run(&cv, false);
            scalar = run(&cv, true);
            g_assert_cmpmem(vec, rp_conv_out_bytes(&cv), scalar, rp_conv_out_bytes(&cv));
            g_free(vec), g_free(scalar);
        }
    }
    /* fp16 depthwise, 3x3: 9 products in a double, exact while they spread over 27 binades
     * at most; 8 taps at the top, one `spread` below, every mantissa all ones */
    for (int spread = 24; spread <= 28; spread++) {
        struct rp_conv cv = { .prec = FP16, .w = 3, .h = 3, .c = 16, .k = 16, .kh = 3, .kw = 3,
                              .stride = 1, .dw = true, .src = SRC, .wt = WT, .dst = DST };
        struct dist top = { 14, 0, 0, 0, 0, true }, low = { 14 - spread, 0, 0, 0, 0, true };
        struct dist w1 = { 0, 0, 0, 0, 0, true };
        uint8_t *vec, *scalar;
        memset(mem + SRC, 0, DST - SRC);
        for (uint32_t t = 0; t < 9; t++) {   /* NC1HWC2: channel ch of pixel t, 8 a surface */
            for (uint32_t ch = 0; ch < cv.c; ch++) {
                put(SRC, ((ch / 8) * 9 + t) * 8 + ch % 8, 16, element(FP16, t ? &top : &low));
                put(WT, t * cv.c + ch, 16, element(FP16, &w1));   /* [tap][ch], one group */
            }
        }
        vec = run(&cv, false);
        scalar = run(&cv, true);
        g_assert_cmpmem(vec, rp_conv_out_bytes(&cv), scalar, rp_conv_out_bytes(&cv));
        g_free(vec), g_free(scalar);
    }
    for (int e = 0; e < 2; e++) {   /* bf16 products near 2^-250 and 2^250 */
        struct rp_conv cv = { .prec = BF16, .w = 2, .h = 3, .c = 40, .k = 9, .kh = 1, .kw = 1,
                              .stride = 1, .src = SRC, .wt = WT, .dst = DST };
        struct dist d = { e ? 118 : -133, 6, 0, 100, e ? 0 : 300, false };
        check(&cv, &d, &d);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mac/vector-vs-scalar/random", test_random);
    g_test_add_func("/mac/vector-vs-scalar/specials", test_specials);
    g_test_add_func("/mac/vector-vs-scalar/bounds", test_bounds);
    g_test_add_func("/mac/vector-vs-scalar/depthwise", test_depthwise);
    return g_test_run();
}
