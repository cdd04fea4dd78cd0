/*
 * The PPU pooling model (HARDWARE-UNKNOWNS.md Q16): the arithmetic helpers against plain loops
 * and the hardware observations, and whole pool kicks (op_en 0x60) through the core.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "ppu.h"
#include "progs.h"
#include "quirks.h"
#include "randvals.h"
#include "testlib.h"

#define IN 0x10000      /* input cube */
#define OUT 0x20000     /* output cube */

static void pool_defaults(struct rp_pool *q, uint32_t w, uint32_t h, uint32_t c, uint32_t k,
                          uint32_t method, uint32_t prec)
{
    memset(q, 0, sizeof(*q));
    q->w = w;
    q->h = h;
    q->c = c;
    q->kw = q->kh = q->sx = q->sy = k;
    q->ow = (w - k) / k + 1;
    q->oh = (h - k) / k + 1;
    q->method = method;
    q->prec = prec;
    q->width = prec == RN_PPU_INT8 ? 1 : prec == RN_PPU_INT32 || prec == RN_PPU_FP32 ? 3 : 2;
    q->src = IN;
    q->dst = OUT;
    q->s_pointer = 0xE;
}

/* GN's / AB's pool program (progs.h), then op_en. */
static void pool_prog(struct prog *p, const struct rp_pool *q, uint32_t op_en)
{
    struct rp_prog r = { .n = 0 };
    rp_pool_regs(q, &r);
    for (unsigned i = 0; i < r.n; i++) {
        emit(p, r.off[i], r.val[i]);
    }
    emit_open(p, op_en);
}

static void run_pool(struct rn_core *c, const struct rp_pool *q, uint32_t op_en,
                     struct rn_kick_result *res)
{
    struct prog p = { .n = 0 };
    pool_prog(&p, q, op_en);
    if (p.n % 2) {
        p.e[p.n++] = 0;
    }
    store_prog(&p, 0);
    kick(c, 0, p.n, 0x7001, res);
    rn_core_write(c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    rn_core_write(c, RN_PC_OPERATION_ENABLE, 0);
}

/* GN's description of RU's r76p_avg_round: the oracle of the integer average. */
static int64_t r76p(int64_t s, int64_t kw, int64_t kh)
{
    int64_t n = kw * kh, q = (llabs(s) + n / 2) / n;
    q = s < 0 ? -q : q;
    if (n % 2 == 0 && llabs(s - q * n) == n / 2 &&
        (65536 % kw || 65536 % kh || (q & 1))) {
        q += s >= 0 ? -1 : 1;
    }
    return q;
}

/* The product rule with GN's floored Q16 reciprocals equals the oracle on the measured shapes
 * for every int8 window sum, and AB's rounded ones where they agree. */
static void test_avg_int_rule(void)
{
    static const uint32_t shapes[][2] = { { 2, 2 }, { 4, 4 }, { 2, 3 }, { 3, 2 }, { 3, 3 } };
    for (unsigned i = 0; i < G_N_ELEMENTS(shapes); i++) {
        uint32_t kw = shapes[i][0], kh = shapes[i][1], n = kw * kh;
        for (int64_t s = -128 * (int64_t)n; s <= 127 * (int64_t)n; s++) {
            int32_t got = rn_ppu_avg_int(s, 65536 / kw, 65536 / kh, -128, 127);
            g_assert_cmpint(got, ==, r76p(s, kw, kh));
        }
    }
    /* half to even with exact reciprocals, toward zero with floored ones */
    g_assert_cmpint(rn_ppu_avg_int(2, 0x8000, 0x8000, -128, 127), ==, 0);     /* 0.5 */
    g_assert_cmpint(rn_ppu_avg_int(6, 0x8000, 0x8000, -128, 127), ==, 2);     /* 1.5 */
    g_assert_cmpint(rn_ppu_avg_int(-6, 0x8000, 0x8000, -128, 127), ==, -2);
    g_assert_cmpint(rn_ppu_avg_int(9, 0x8000, 21845, -128, 127), ==, 1);      /* 1.5, 2x3 */
    g_assert_cmpint(rn_ppu_avg_int(-9, 0x8000, 21845, -128, 127), ==, -1);
    /* AB's capture: 0x7800 (fp16 of 2) read as Q16 in both registers, mean 15 of 2x2 -> 13 */
    g_assert_cmpint(rn_ppu_avg_int(60, 0x7800, 0x7800, -128, 127), ==, 13);
    g_assert_cmpint(rn_ppu_avg_int(20, 0x7800, 0x7800, -128, 127), ==, 4);
    /* saturation, and the register's 17 bits */
    g_assert_cmpint(rn_ppu_avg_int(508, 0x10000, 0x10000, -128, 127), ==, 127);
    g_assert_cmpint(rn_ppu_avg_int(-40000, 0x10000, 0x8000, INT16_MIN, INT16_MAX), ==, -20000);
    g_assert_cmpint(rn_ppu_avg_int(4, 0xFFFE0000u | 0x8000, 0x8000, -128, 127), ==, 1);
}

/* fp16.h's conversions, which the fp16 average rounds with, and the FP17 reciprocals. */
static void test_fp16_conversions(void)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = rn_half_to_float((uint16_t)h);
        bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        g_assert_cmpint(isnan(f), ==, nan);
        g_assert_cmphex(rn_float_to_half(f), ==, nan ? (h & 0x8000) | 0x7E00 : h);   /* exact */
    }
    g_assert_true(rn_half_to_float(0x0001) == ldexpf(1, -24));
    g_assert_true(rn_half_to_float(0x7BFF) == 65504.0f);
    g_assert_cmphex(rn_float_to_half(2049.0f), ==, 0x6800);     /* tie to even: 2048 */
    g_assert_cmphex(rn_float_to_half(2051.0f), ==, 0x6802);     /* tie to even: 2052 */
    g_assert_cmphex(rn_float_to_half(2049.5f), ==, 0x6801);
    g_assert_cmphex(rn_float_to_half(65519.0f), ==, 0x7BFF);
    g_assert_cmphex(rn_float_to_half(65520.0f), ==, 0x7C00);    /* rounds past the largest */
    g_assert_cmphex(rn_float_to_half(-1e10f), ==, 0xFC00);
    g_assert_cmphex(rn_float_to_half(ldexpf(1, -25)), ==, 0x0000);        /* tie to even: 0 */
    g_assert_cmphex(rn_float_to_half(ldexpf(3, -26)), ==, 0x0001);
    g_assert_cmphex(rn_float_to_half(ldexpf(3, -25)), ==, 0x0002);        /* 1.5 units: even */
    g_assert_cmphex(rn_float_to_half(ldexpf(1023.5f, -24)), ==, 0x0400); /* into the normals */
    g_assert_cmphex(rn_float_to_half(-ldexpf(1, -30)), ==, 0x8000);
    /* the reciprocal formats: GN k=2 -> 0x7800, k=3 -> 0x7555, FP17 1.0 = 0x7C00 */
    g_assert_true(rn_ppu_recip_fp17(0x7800) == 0.5f);
    g_assert_true(rn_ppu_recip_fp17(0x7555) == 1365.0f / 4096.0f);
    g_assert_true(rn_ppu_recip_fp17(0x7C00) == 1.0f);
    g_assert_true(rn_ppu_recip_fp17(0x17800) == -0.5f);
    g_assert_true(rn_ppu_recip_fp17(0xFC00) == 4294967296.0f);          /* e = 63: 2^32 */
    g_assert_true(rn_ppu_recip_fp17(0x03FF) == 0.0f);                   /* e = 0 */
    for (uint32_t k = 2; k <= 16; k++) {   /* fp16(65536/k) bits, read as FP17, are 1/k */
        float r = rn_ppu_recip_fp17(rn_float_to_half(65536.0f / (float)k));
        g_assert_cmpfloat(fabsf(r * (float)k - 1.0f), <=, 1.0f / 2048.0f);
    }
    g_assert_cmphex(rn_ppu_avg_fp16(4.0f, 0x7800, 0x7800), ==, 0x3C00);
    g_assert_cmphex(rn_ppu_avg_fp16(-NAN, 0x7800, 0x7800), ==, 0x7E00);    /* one NaN */
    g_assert_cmphex(rn_ppu_avg_fp16(INFINITY, 0x7800, 0x0000), ==, 0x7E00); /* inf · 0 */
}

static void put16(uint32_t a, uint16_t v)
{
    mem[a] = (uint8_t)v;
    mem[a + 1] = (uint8_t)(v >> 8);
}

static uint16_t get16(uint32_t a)
{
    return (uint16_t)(mem[a] | mem[a + 1] << 8);
}

/* int8 max and min: 6x4x20 (two surfaces), 3x3 windows, stride 2, pads 1 with -128 / 127. */
static void test_max_min_int8(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    core_setup(&c);
    for (uint32_t method = RN_POOL_MAX; method <= RN_POOL_MIN; method++) {
        pool_defaults(&q, 6, 4, 20, 3, method, RN_PPU_INT8);
        q.sx = q.sy = 2;
        q.pl = q.pt = q.pr = q.pb = 1;
        q.ow = 3;
        q.oh = 2;
        q.pad = method == RN_POOL_MAX ? 0x0007FF80 : 0x7F;
        for (uint32_t i = 0; i < 2 * 4 * 6 * 16; i++) {
            mem[IN + i] = (uint8_t)(i * 37 + 11);
        }
        memset(mem + OUT, 0xA5, 0x1000);
        run_pool(&c, &q, 0x60, &res);
        g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0 << (method == RN_POOL_MIN));
        for (uint32_t s = 0; s < 2; s++) {
            for (uint32_t oy = 0; oy < q.oh; oy++) {
                for (uint32_t ox = 0; ox < q.ow; ox++) {
                    for (uint32_t l = 0; l < 16; l++) {
                        int want = method == RN_POOL_MAX ? -128 : 127;
                        for (int ky = 0; ky < 3; ky++) {
                            for (int kx = 0; kx < 3; kx++) {
                                int y = (int)oy * 2 - 1 + ky, x = (int)ox * 2 - 1 + kx;
                                int v;
                                if (y < 0 || y >= 4 || x < 0 || x >= 6) {
                                    continue;   /* the pad: the identity */
                                }
                                v = (int8_t)mem[IN + ((s * 4 + y) * 6 + x) * 16 + l];
                                want = method == RN_POOL_MAX ? MAX(want, v) : MIN(want, v);
                            }
                        }
                        g_assert_cmpint((int8_t)mem[OUT + ((s * 2 + oy) * 3 + ox) * 16 + l], ==,
                                        want);
                    }
                }
            }
        }
        g_assert_cmphex(mem[OUT + 2 * 6 * 16], ==, 0xA5);   /* nothing past the cube */
    }
    rn_core_destroy(&c);
}

/* int8 average, 2x2 stride 2: the ties of the hardware's rounding; int16 2x3 with 0x10000/3. */
static void test_avg_int8_rounding(void)
{
    static const int8_t win[][4] = { { 1, 1, 0, 0 }, { 1, 1, 1, 3 }, { -1, -1, 0, 0 },
                                     { -3, -1, -1, -1 }, { 3, 3, 2, 2 }, { 127, 127, 127, 126 },
                                     { -128, -128, -128, -127 }, { 5, 5, 5, 5 } };
    static const int8_t want[] = { 0, 2, 0, -2, 2, 127, -128, 5 };   /* .5 1.5 -.5 -1.5 2.5 */
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    core_setup(&c);
    pool_defaults(&q, 16, 2, 16, 2, RN_POOL_AVG, RN_PPU_INT8);
    q.rw = q.rh = 0x8000;
    for (uint32_t i = 0; i < 8; i++) {
        for (uint32_t l = 0; l < 16; l++) {
            mem[IN + (2 * i) * 16 + l] = (uint8_t)win[i][0];
            mem[IN + (2 * i + 1) * 16 + l] = (uint8_t)win[i][1];
            mem[IN + (16 + 2 * i) * 16 + l] = (uint8_t)win[i][2];
            mem[IN + (16 + 2 * i + 1) * 16 + l] = (uint8_t)win[i][3];
        }
    }
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);
    for (uint32_t i = 0; i < 8; i++) {
        g_assert_cmpint((int8_t)mem[OUT + i * 16 + 5], ==, want[i]);
    }
    /* int16 2x3 windows (kh 2, kw 3) stride 3x2: sums 3, 9, -9, 15 -> 0, 1, -1, 2 (toward zero) */
    pool_defaults(&q, 12, 2, 8, 2, RN_POOL_AVG, RN_PPU_INT16);
    q.kw = q.sx = 3;
    q.ow = 4;
    q.oh = 1;
    q.rw = 65536 / 3;
    q.rh = 65536 / 2;
    memset(mem + IN, 0, 0x1000);
    for (uint32_t l = 0; l < 8; l++) {
        put16(IN + (0 * 12 + 0) * 16 + 2 * l, 3);
        put16(IN + (0 * 12 + 3) * 16 + 2 * l, 9);
        put16(IN + (1 * 12 + 7) * 16 + 2 * l, (uint16_t)-9);
        put16(IN + (1 * 12 + 11) * 16 + 2 * l, 15);
    }
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_1);   /* the executer toggled */
    g_assert_cmpint((int16_t)get16(OUT + 0 * 16 + 6), ==, 0);
    g_assert_cmpint((int16_t)get16(OUT + 1 * 16 + 6), ==, 1);
    g_assert_cmpint((int16_t)get16(OUT + 2 * 16 + 6), ==, -1);
    g_assert_cmpint((int16_t)get16(OUT + 3 * 16 + 6), ==, 2);
    rn_core_destroy(&c);
}

/* fp16 average, 2x2 stride 1, pad 1 of 0 (count-include-pad), reciprocals fp16(65536/2). */
static void test_avg_fp16(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    core_setup(&c);
    pool_defaults(&q, 3, 2, 8, 2, RN_POOL_AVG, RN_PPU_FP16);
    q.sx = q.sy = 1;
    q.pl = q.pt = q.pr = q.pb = 1;
    q.ow = 4;
    q.oh = 3;
    q.rw = q.rh = 0x7800;
    for (uint32_t y = 0; y < 2; y++) {
        for (uint32_t x = 0; x < 3; x++) {
            for (uint32_t l = 0; l < 8; l++) {
                put16(IN + (y * 3 + x) * 16 + 2 * l,
                      rn_float_to_half((float)(y * 3 + x) + 0.25f * (float)l));
            }
        }
    }
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);
    for (uint32_t oy = 0; oy < 3; oy++) {
        for (uint32_t ox = 0; ox < 4; ox++) {
            for (uint32_t l = 0; l < 8; l++) {
                float sum = 0;
                for (int ky = 0; ky < 2; ky++) {
                    for (int kx = 0; kx < 2; kx++) {
                        int y = (int)oy - 1 + ky, x = (int)ox - 1 + kx;
                        if (y >= 0 && y < 2 && x >= 0 && x < 3) {
                            sum += (float)(y * 3 + x) + 0.25f * (float)l;
                        }
                    }
                }
                /* sums of quarters below 2^11: exact, and so is sum / 4 */
                g_assert_cmphex(get16(OUT + (oy * 4 + ox) * 16 + 2 * l), ==,
                                rn_float_to_half(sum / 4));
            }
        }
    }
    rn_core_destroy(&c);
}

/*
 * The fast window loops (rn_ppu_run) against the step-by-step pool_atom (rn_ppu_scalar_only) on
 * random pools of every precision and method: kernels, strides, pads and pad values, inputs
 * with the halves' edge values and NaNs, the integers' extremes.
 */
static void test_fast_vs_step(void)
{
    static const uint32_t precs[] = { RN_PPU_INT8, RN_PPU_INT16, RN_PPU_FP16 };
    GRand *r = g_rand_new_with_seed(1613);
    static uint8_t want[64 * 1024];
    for (int iter = 0; iter < 300; iter++) {
        struct rn_core c;
        struct rn_kick_result res;
        struct rp_pool q;
        uint32_t prec = precs[g_rand_int_range(r, 0, 3)];
        uint32_t method = (uint32_t)g_rand_int_range(r, 0, 3);
        uint32_t k = (uint32_t)g_rand_int_range(r, 1, 5), in_bytes, out_bytes;
        pool_defaults(&q, (uint32_t)g_rand_int_range(r, 1, 12), (uint32_t)g_rand_int_range(r, 1, 12),
                      (uint32_t)g_rand_int_range(r, 1, 40), 1, method, prec);
        q.kw = k;
        q.kh = (uint32_t)g_rand_int_range(r, 1, 5);
        q.sx = (uint32_t)g_rand_int_range(r, 1, 4);
        q.sy = (uint32_t)g_rand_int_range(r, 1, 4);
        q.pl = (uint32_t)g_rand_int_range(r, 0, 3);
        q.pt = (uint32_t)g_rand_int_range(r, 0, 3);
        q.pr = (uint32_t)g_rand_int_range(r, 0, 3);
        q.pb = (uint32_t)g_rand_int_range(r, 0, 3);
        if (q.w + q.pl + q.pr < q.kw || q.h + q.pt + q.pb < q.kh) {
            continue;
        }
        q.ow = (q.w + q.pl + q.pr - q.kw) / q.sx + 1;
        q.oh = (q.h + q.pt + q.pb - q.kh) / q.sy + 1;
        q.pad = prec == RN_PPU_FP16 ? random_half(r) : g_rand_int(r) & 0xFFFF;
        q.rw = prec == RN_PPU_FP16 ? rn_float_to_half(65536.0f / (float)q.kw) : 65536 / q.kw;
        q.rh = prec == RN_PPU_FP16 ? rn_float_to_half(65536.0f / (float)q.kh) : 65536 / q.kh;
        in_bytes = (q.c * (prec == RN_PPU_INT8 ? 1 : 2) + 15) / 16 * q.w * q.h * 16;
        out_bytes = (q.c * (prec == RN_PPU_INT8 ? 1 : 2) + 15) / 16 * q.ow * q.oh * 16;
        g_assert_cmpuint(out_bytes, <=, sizeof(want));
        for (uint32_t i = 0; i < in_bytes; i += 2) {
            uint16_t v = prec == RN_PPU_FP16 ? random_half(r)
                       : g_rand_int_range(r, 0, 8) ? (uint16_t)g_rand_int(r)
                       : (uint16_t)(g_rand_boolean(r) ? 0x7F7F : 0x8080);
            put16(IN + i, v);
        }
        for (int fast = 0; fast < 2; fast++) {
            core_setup(&c);
            memset(mem + OUT, 0x5A, out_bytes);
            rn_ppu_scalar_only = !fast;
            run_pool(&c, &q, 0x60, &res);
            rn_ppu_scalar_only = false;
            rn_core_destroy(&c);
            g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);
            if (!fast) {
                memcpy(want, mem + OUT, out_bytes);
            } else if (memcmp(want, mem + OUT, out_bytes)) {
                g_error("pool %u method %u %ux%ux%u k %ux%u s %ux%u pads %u/%u/%u/%u: fast "
                        "path differs", prec, method, q.w, q.h, q.c, q.kw, q.kh, q.sx, q.sy,
                        q.pl, q.pt, q.pr, q.pb);
            }
        }
    }
    g_rand_free(r);
}

/* PPU_0 / PPU_1 by the PPU executer; no DPU bit, so mainline's mask 0x300 keeps the line low. */
static void test_completion(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    struct prog p = { .n = 0 };
    core_setup(&c);
    pool_defaults(&q, 4, 4, 16, 2, RN_POOL_MAX, RN_PPU_INT8);
    pool_prog(&p, &q, 0x60);
    store_prog(&p, 0);
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_RAW_STATUS), ==, RN_IRQ_PPU_0);
    g_assert_false(rn_core_irq_level(&c));                 /* mask 0x300 (rocket) */
    rn_core_write(&c, RN_PC_INTERRUPT_MASK, 0xC00);        /* the vendor's pool mask */
    g_assert_true(rn_core_irq_level(&c));
    rn_core_write(&c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    rn_core_write(&c, RN_PC_OPERATION_ENABLE, 0);
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_1);
    g_assert_cmpint(res.tasks, ==, 1);
    g_assert_cmpuint(res.bytes_written, ==, 2 * 2 * 16);
    g_assert_cmpuint(res.macs, ==, 0);
    rn_core_destroy(&c);
}

/* A fault on the input or the output: error bit and the PPU's completion bit. */
static void test_dma_fault(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    core_setup(&c);
    pool_defaults(&q, 4, 4, 16, 2, RN_POOL_MAX, RN_PPU_INT8);
    q.s_pointer = 0;
    q.src = MEM_SIZE - 0x80;               /* the last rows run off the memory */
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_ERR_DMA_READ | RN_IRQ_PPU_0);
    q.src = IN;
    q.dst = MEM_SIZE - 16;
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_ERR_DMA_WRITE | RN_IRQ_PPU_0);
    rn_core_destroy(&c);
}

/* What the model does not implement: an error completion and a log line, nothing written. */
static void test_refusals(void)
{
    static const struct { uint32_t op_en, mode, prec, width; } bad[] = {
        { 0x60, 1u << 30, RN_PPU_INT8, 1 },         /* INDEX_EN */
        { 0x60, 2u << 16, RN_PPU_INT8, 1 },         /* NOTCH_ADDR */
        { 0x20, 0, RN_PPU_INT8, 1 },                /* PPU without PPU_RDMA: from the DPU */
        { 0x7D, 0, RN_PPU_INT8, 1 },                /* DPU -> PPU flying */
        { 0x60, 0, RN_PPU_INT8, 0 },                /* IN_PRECISION 0 */
        { 0x60, 0, RN_PPU_FP16, 1 },                /* fp16 over an 8-bit read */
        { 0x60, 0, 3, 2 },                          /* PROC_PRECISION 3 */
    };
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    core_setup(&c);
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        unsigned logs = n_logs;
        pool_defaults(&q, 4, 4, 16, 2, RN_POOL_MAX, bad[i].prec);
        q.mode_extra = bad[i].mode;
        q.width = bad[i].width;
        q.s_pointer = 0;
        memset(mem + OUT, 0xA5, 64);
        run_pool(&c, &q, bad[i].op_en, &res);
        g_assert_cmphex(res.raw_bits, ==,
                        RN_ERR_DMA_READ | (bad[i].op_en & 8 ? RN_IRQ_DPU_0 : RN_IRQ_PPU_0));
        g_assert_cmpuint(n_logs, >, logs);
        g_assert_cmphex(mem[OUT], ==, 0xA5);
    }
    /* int32 and fp32 processing complete and write zeros (AB) */
    pool_defaults(&q, 4, 4, 4, 2, RN_POOL_MAX, RN_PPU_FP32);
    memset(mem + IN, 0x3F, 4 * 4 * 16);
    memset(mem + OUT, 0xA5, 64);
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);
    for (int i = 0; i < 64; i++) {
        g_assert_cmphex(mem[OUT + i], ==, 0);
    }
    rn_core_destroy(&c);
}

/* The PPU quirks of Q15: the triggers' measured points and their effects in a kick. */
static void test_quirks(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct rp_pool q;
    g_assert_false(rn_quirk_ppu_width_hang(3, 3, 1, 1, 34));
    g_assert_true(rn_quirk_ppu_width_hang(3, 3, 1, 1, 35));
    g_assert_false(rn_quirk_ppu_width_hang(4, 4, 1, 1, 34));
    g_assert_true(rn_quirk_ppu_width_hang(4, 4, 1, 1, 36));
    g_assert_false(rn_quirk_ppu_width_hang(5, 5, 1, 1, 20));
    g_assert_true(rn_quirk_ppu_width_hang(8, 8, 1, 1, 24));
    g_assert_false(rn_quirk_ppu_width_hang(2, 2, 1, 1, 40));     /* 2x2 unaffected */
    g_assert_false(rn_quirk_ppu_width_hang(3, 3, 2, 2, 129));    /* the vendor's tiles */
    g_assert_true(rn_quirk_ppu_kernel16_pad7(16, 16, 7, 7, 7, 7));
    g_assert_false(rn_quirk_ppu_kernel16_pad7(16, 16, 0, 0, 0, 0));   /* alone: exact (AB) */
    g_assert_false(rn_quirk_ppu_kernel16_pad7(8, 8, 7, 7, 7, 7));

    core_setup(&c);
    pool_defaults(&q, 40, 3, 8, 3, RN_POOL_MAX, RN_PPU_FP16);
    q.sx = q.sy = 1;
    q.ow = 38;
    q.oh = 1;
    memset(mem + OUT, 0xA5, 64);
    run_pool(&c, &q, 0x60, &res);
    g_assert_true(res.hang);
    g_assert_cmphex(mem[OUT], ==, 0xA5);
    rn_core_reset(&c);
    c.quirks &= ~(1u << RN_QUIRK_PPU_WIDTH_HANG);
    run_pool(&c, &q, 0x60, &res);
    g_assert_false(res.hang);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_PPU_0);

    pool_defaults(&q, 16, 16, 8, 16, RN_POOL_MAX, RN_PPU_INT16);
    q.pl = q.pt = q.pr = q.pb = 7;
    for (uint32_t i = 0; i < 16 * 16; i++) {
        for (uint32_t l = 0; l < 8; l++) {
            put16(IN + i * 16 + 2 * l, (uint16_t)(i * 8 + l));
        }
    }
    run_pool(&c, &q, 0x60, &res);
    g_assert_cmphex(res.raw_bits & 0x3000, ==, 0);
    for (uint32_t l = 0; l < 8; l++) {
        g_assert_cmpint(get16(OUT + 2 * l), ==, l);       /* the first input element */
    }
    rn_core_destroy(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ppu/avg-int-rule", test_avg_int_rule);
    g_test_add_func("/ppu/fp16-conversions", test_fp16_conversions);
    g_test_add_func("/ppu/max-min-int8", test_max_min_int8);
    g_test_add_func("/ppu/avg-int8-rounding", test_avg_int8_rounding);
    g_test_add_func("/ppu/avg-fp16", test_avg_fp16);
    g_test_add_func("/ppu/completion", test_completion);
    g_test_add_func("/ppu/dma-fault", test_dma_fault);
    g_test_add_func("/ppu/refusals", test_refusals);
    g_test_add_func("/ppu/quirks", test_quirks);
    g_test_add_func("/ppu/fast-vs-step", test_fast_vs_step);
    return g_test_run();
}
