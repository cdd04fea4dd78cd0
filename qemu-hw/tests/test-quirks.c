/*
 * The quirks of HARDWARE-UNKNOWNS.md Q15 against the hardware observations they come from: the
 * sweeps' failing and passing shapes for each trigger, and whole kicks whose affected elements are
 * compared with the same kick on ideal hardware (quirks off).
 */
#include <glib.h>
#include <string.h>

#include "quirks.h"
#include "testlib.h"

static bool overflows(uint32_t w, uint32_t h, uint32_t c, uint32_t banks)
{
    struct rn_cbuf_geom g;
    rn_cbuf_geom(&g, w, h, c, banks);
    return rn_quirk_cbuf_overflow(&g, g.e64);
}

/* GN's int8 matmul as a 1x1 conv (W = 1, H = M rows, C = K), DATA_BANK = ceil(M·K / 32 KiB). */
static bool gn_matmul_bad(uint32_t m, uint32_t k)
{
    return overflows(1, m, k, (m * k + 32767) / 32768);
}

static void test_overflow_sweeps(void)
{
    /* encodings/cbuf-bank-slack.md: the K/32 groups that garble, per M tile; all others exact */
    static const struct { uint32_t m; uint32_t bad[4]; } gn[] = {
        { 144, { 7, 21, 35 } }, { 192, { 5, 21, 37 } }, { 240, { 17, 21, 25, 29 } },
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(gn); i++) {
        for (uint32_t kg = 1; kg <= 40; kg++) {
            bool bad = false;
            for (unsigned j = 0; j < 4; j++) {
                bad |= gn[i].bad[j] == kg;
            }
            g_assert_cmpint(gn_matmul_bad(gn[i].m, 32 * kg), ==, bad);
        }
    }
    /* the same file, IC = 1184 at IW = 1: IH 189-193 and 216-221 garble, the neighbours do not */
    for (uint32_t ih = 188; ih <= 222; ih++) {
        bool bad = (ih >= 189 && ih <= 193) || (ih >= 216 && ih <= 221);
        g_assert_cmpint(gn_matmul_bad(ih, 1184), ==, bad);
    }
    /* IR conv.rs: fp16 Cin 16 (2 atoms = int8 C 32) on 11 banks: 97 rows of 115 fit, 99 of 113 not */
    g_assert_false(overflows(115, 97, 32, 11));
    g_assert_true(overflows(113, 99, 32, 11));
    /* one bank of slack cures it (GN: "+1 is bit-exact") */
    g_assert_false(overflows(1, 144, 672, 4));
}

static void test_slab_wrap_boundary(void)
{
    struct rn_cbuf_geom g;
    /* IR LIMITS.md: int8 K 512 (8 slabs) is exact up to width 292 */
    rn_cbuf_geom(&g, 292, 1, 512, 11);
    g_assert_false(rn_quirk_slab_wrap(&g));
    rn_cbuf_geom(&g, 293, 1, 512, 11);
    g_assert_true(rn_quirk_slab_wrap(&g));
    /* fp16 K 768 = 96 atoms = int8 C 1536: 89 exact, 90 wraps; one slab never wraps */
    rn_cbuf_geom(&g, 89, 4, 1536, 11);
    g_assert_false(rn_quirk_slab_wrap(&g));
    rn_cbuf_geom(&g, 90, 1, 1536, 11);
    g_assert_true(rn_quirk_slab_wrap(&g));
    rn_cbuf_geom(&g, 2000, 1, 64, 11);
    g_assert_false(rn_quirk_slab_wrap(&g));
    /* slab 7 at 7·293 = 2051 reads from unit 3: slab 0, pixel 3 */
    rn_cbuf_geom(&g, 293, 1, 512, 11);
    g_assert_cmpuint(rn_slab_wrap_unit(&g, 7 * 293 + 0), ==, 3);
}

static void test_cbuf_layout(void)
{
    struct rn_cbuf_geom g;
    uint32_t byte = 0, x = 0, c = 0;
    /* Mesa's special case: 40x40x40 needs 40 units a row (3 atoms take a unit per pixel) */
    rn_cbuf_geom(&g, 40, 40, 40, 7);
    g_assert_cmpuint(g.e64, ==, 40);
    g_assert_true(rn_quirk_short_entries(&g, 30));   /* Mesa's formula without the special case */
    g_assert_false(rn_quirk_short_entries(&g, 40));
    /* vendor DATA_ENTRIES = W·q/4: 2 atoms pack 2 pixels a unit */
    rn_cbuf_geom(&g, 7, 1, 32, 1);
    g_assert_cmpuint(g.e64, ==, 4);
    /* every element's unit maps back to it */
    for (uint32_t ch = 0; ch < 100; ch += 33) {
        rn_cbuf_geom(&g, 9, 1, 100 + ch, 2);
        for (uint32_t px = 0; px < 9; px++) {
            for (uint32_t cc = 0; cc < g.c; cc++) {
                uint64_t u = rn_cbuf_inrow(&g, px, cc, &byte);
                g_assert_cmpuint(u, <, g.e64);
                g_assert_true(rn_cbuf_elem(&g, u, byte, &x, &c));
                g_assert_cmpuint(x, ==, px);
                g_assert_cmpuint(c, ==, cc);
            }
        }
    }
}

static void test_size_e_rule(void)
{
    /* Mesa's int8 writers: conv SIZE_E 1 (BS_OW_CFG 0x124), depthwise 3 (0x36C) */
    g_assert_cmpuint(rn_size_e_expected(32, 1), ==, 1);
    g_assert_cmpuint(rn_size_e_expected(64, 1), ==, 3);
    g_assert_cmpuint(rn_size_e_expected(32, 4), ==, 7);   /* int8 -> int32 writer */
    g_assert_cmpuint(rn_size_e_expected(64, 2), ==, 7);   /* int4 -> int16 (GN) */
    g_assert_cmpuint(rn_size_e_expected(16, 4), ==, 3);   /* int16/fp16/bf16/tf32 -> 32-bit */
    g_assert_cmpuint(rn_size_e_expected(16, 2), ==, 1);   /* fp16 -> fp16 */
    g_assert_cmpuint(rn_size_e_expected(32, 2), ==, 3);   /* fp16 depthwise -> fp16 */
}

static void test_switch(void)
{
    uint32_t m;
    char err[160];
    g_assert_cmpint(rn_quirks_parse("off", &m, err, sizeof(err)), ==, 0);
    g_assert_cmphex(m, ==, 0);
    g_assert_cmpint(rn_quirks_parse("on", &m, err, sizeof(err)), ==, 0);
    g_assert_cmphex(m, ==, rn_quirks_default());
    g_assert_false((m >> RN_QUIRK_S_POINTER_CORE_BITS) & 1);
    g_assert_cmpint(rn_quirks_parse("-size-e,+s-pointer-core-bits", &m, err, sizeof(err)), ==, 0);
    g_assert_false((m >> RN_QUIRK_SIZE_E) & 1);
    g_assert_true((m >> RN_QUIRK_S_POINTER_CORE_BITS) & 1);
    g_assert_cmpint(rn_quirks_parse("cbuf-overflow", &m, err, sizeof(err)), ==, -1);
    g_assert_nonnull(strstr(err, "cbuf-overflow"));
    rn_quirks_format((1u << RN_QUIRK_SIZE_E) | 1, err, sizeof(err));
    g_assert_cmpstr(err, ==, "cbuf-data-overflow,size-e");
}

/* ---- whole kicks ---- */

#define IN 0x10000u
#define WT 0x40000u
#define BIAS 0x60000u
#define OUT 0x80000u

static uint32_t quirks_seen;

static void on_task(void *o, const struct rn_task_stats *st)
{
    (void)o;
    quirks_seen |= st->quirks;
}

/* A Mesa-style 1x1 conv of W x H x C to 32 kernels, DATA_BANK banks, DATA_ENTRIES entries. */
static void conv_wide(struct prog *p, uint32_t w, uint32_t h, uint32_t ci, uint32_t banks,
                      uint32_t entries)
{
    uint32_t surf = w * h * 16;
    conv_1x1(p, OUT);
    emit(p, RN_CNA_DATA_SIZE0, RN_FV(CNA, DATA_SIZE0, DATAIN_WIDTH, w) |
                               RN_FV(CNA, DATA_SIZE0, DATAIN_HEIGHT, h));
    emit(p, RN_CNA_DATA_SIZE1, RN_FV(CNA, DATA_SIZE1, DATAIN_CHANNEL, ci));
    emit(p, RN_CNA_WEIGHT_SIZE1, ci);
    emit(p, RN_CNA_WEIGHT_SIZE2, RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_WIDTH, 1) |
                                 RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_HEIGHT, 1) |
                                 RN_FV(CNA, WEIGHT_SIZE2, WEIGHT_KERNELS, 32));
    emit(p, RN_CNA_FEATURE_DATA_ADDR, IN);
    emit(p, RN_CNA_DCOMP_ADDR0, WT);
    emit(p, RN_CNA_DMA_CON1, 4 * w);
    emit(p, RN_CNA_DMA_CON2, (uint32_t)(w * (h - 4.0)) & 0x0FFFFFFF);   /* vendor: W·(H−4) */
    emit(p, RN_CNA_CBUF_CON0, RN_FV(CNA, CBUF_CON0, DATA_BANK, banks) |
                              RN_FV(CNA, CBUF_CON0, WEIGHT_BANK, 12 - banks));
    emit(p, RN_CNA_CBUF_CON1, entries);
    emit(p, RN_CORE_DATAOUT_SIZE_0, (h - 1) << 16 | (w - 1));
    emit(p, RN_DPU_DATA_CUBE_WIDTH, w - 1);
    emit(p, RN_DPU_DATA_CUBE_HEIGHT, h - 1);
    emit(p, RN_DPU_DATA_CUBE_CHANNEL, RN_FV(DPU, DATA_CUBE_CHANNEL, ORIG_CHANNEL, 31) |
                                      RN_FV(DPU, DATA_CUBE_CHANNEL, CHANNEL, 31));
    emit(p, RN_DPU_DST_SURF_STRIDE, surf);
    emit(p, RN_DPU_SURFACE_ADD, 2 * surf);
    emit(p, RN_DPU_OUT_CVT_SHIFT, 4);
    emit(p, RN_DPU_RDMA_BS_BASE_ADDR, BIAS);
    emit_open(p, 0x1D);
}

static void wide_data(uint32_t w, uint32_t h, uint32_t ci)
{
    uint32_t x = 7;
    for (uint32_t i = 0; i < (ci + 15) / 16 * 16 * w * h; i++) {
        mem[IN + i] = (uint8_t)(((x = x * 1664525u + 1013904223u) >> 24) % 9) - 4;
    }
    for (uint32_t i = 0; i < 32 * ci; i++) {
        mem[WT + i] = (uint8_t)(((x = x * 1664525u + 1013904223u) >> 24) % 9) - 4;
    }
}

/* Run the program at 0 with quirks on or off; the output (2 surfaces) lands in out. */
static struct rn_kick_result run_wide(const struct prog *p, uint32_t quirks, uint8_t *out,
                                      size_t len, uint32_t w, uint32_t h, uint32_t ci)
{
    struct rn_core c;
    struct rn_kick_result res;
    core_setup(&c);
    wide_data(w, h, ci);
    c.quirks = quirks;
    c.on_task = on_task;
    quirks_seen = 0;
    store_prog(p, 0);
    memset(mem + OUT, 0xAA, len);
    kick(&c, 0, p->n, 0x7001, &res);
    memcpy(out, mem + OUT, len);
    rn_core_destroy(&c);
    return res;
}

/*
 * Output rows (of both 16-channel surfaces) that differ between a and b: bit y - (h - 64) for the
 * last 64 rows; all ones if an earlier row differs.
 */
static uint64_t rows_differ(const uint8_t *a, const uint8_t *b, uint32_t w, uint32_t h)
{
    uint64_t rows = 0;
    for (uint32_t s = 0; s < 2; s++) {
        for (uint32_t y = 0; y < h; y++) {
            size_t at = ((size_t)s * h + y) * w * 16;
            if (!memcmp(a + at, b + at, (size_t)w * 16)) {
                continue;
            }
            if (y + 64 < h) {
                return ~0ull;
            }
            rows |= 1ull << (y + 64 - h);
        }
    }
    return rows;
}

static void test_overflow_kick(void)
{
    /* GN's M = 144, K = 672 tile on 3 banks: 140 rows of 11 units fit 1536, so row 139 loses its
     * last units and rows 140-143 are not stored at all */
    enum { W = 1, H = 144, C = 672 };
    static uint8_t ideal[2 * W * H * 16], real[2 * W * H * 16];
    struct prog p = { .n = 0 };
    struct rn_kick_result res;
    conv_wide(&p, W, H, C, 3, 11);
    res = run_wide(&p, 0, ideal, sizeof(ideal), W, H, C);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    g_assert_cmphex(quirks_seen, ==, 0);
    res = run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    g_assert_cmphex(quirks_seen, ==, 1u << RN_QUIRK_CBUF_DATA_OVERFLOW);
    /* exactly output rows 139-143 differ */
    g_assert_cmphex(rows_differ(ideal, real, W, H), ==, 0x1Full << (139 + 64 - H));
    /* with one more bank the board is exact (GN: "+1 is bit-exact") */
    p.n = 0;
    conv_wide(&p, W, H, C, 4, 11);
    run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_cmphex(quirks_seen, ==, 0);
    g_assert_cmpmem(ideal, sizeof(ideal), real, sizeof(real));
}

static void test_short_entries_kick(void)
{
    /* 8 x 4 x 40: 3 atoms take a unit per pixel (E64 = 8); Mesa's formula gives 6 */
    enum { W = 8, H = 4, C = 40 };
    static uint8_t ideal[2 * W * H * 16], real[2 * W * H * 16];
    struct prog p = { .n = 0 };
    conv_wide(&p, W, H, C, 1, 6);
    run_wide(&p, 0, ideal, sizeof(ideal), W, H, C);
    run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_cmphex(quirks_seen, ==, 1u << RN_QUIRK_SHORT_DATA_ENTRIES);
    /* rows 0-2 read pixels 6 and 7 from the next row's pixels 0 and 1; the last row is whole */
    for (uint32_t y = 0; y < H; y++) {
        for (uint32_t x = 0; x < W; x++) {
            size_t at = ((size_t)y * W + x) * 16;
            bool hit = y < H - 1 && x >= 6;
            g_assert_cmpint(memcmp(ideal + at, real + at, 16) != 0, ==, hit);
        }
    }
}

static void test_gating_and_size_e_kicks(void)
{
    enum { W = 4, H = 4, C = 16 };
    static uint8_t ideal[2 * W * H * 16], real[2 * W * H * 16];
    struct prog p = { .n = 0 };
    struct rn_kick_result res;
    conv_wide(&p, W, H, C, 1, 1);
    run_wide(&p, 0, ideal, sizeof(ideal), W, H, C);
    /* MAC_GATING bit 11 clear: lanes 0-7 of every atom read 0, lanes 8-15 exact */
    p.n--;   /* drop the op_en entry, then add a register and op_en again */
    p.n--;
    emit(&p, RN_CORE_MAC_GATING, 0x07800800 & ~RN_MAC_GATE_LO);
    emit_open(&p, 0x1D);
    res = run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    for (size_t i = 0; i < sizeof(real); i++) {
        g_assert_cmpint(real[i], ==, i % 16 < 8 ? 0 : ideal[i]);
    }
    /* bit 24 clear: the job never completes */
    p.n -= 2;
    emit(&p, RN_CORE_MAC_GATING, 0x07800800 & ~RN_MAC_GATE_ALL);
    emit_open(&p, 0x1D);
    res = run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_true(res.hang);
    res = run_wide(&p, 0, real, sizeof(real), W, H, C);
    g_assert_false(res.hang);
    /* SIZE_E 0 with OD_BYPASS = 1: only the first surface of each 32-channel group is written */
    p.n = 0;
    conv_wide(&p, W, H, C, 1, 1);
    p.n -= 2;
    emit(&p, RN_DPU_BS_OW_CFG, RN_FV(DPU, BS_OW_CFG, OD_BYPASS, 1));   /* SIZE_E 0/0/0 */
    emit_open(&p, 0x1D);
    run_wide(&p, 0, ideal, sizeof(ideal), W, H, C);
    res = run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    g_assert_cmpmem(ideal, W * H * 16, real, W * H * 16);
    for (size_t i = W * H * 16; i < sizeof(real); i++) {
        g_assert_cmphex(real[i], ==, 0xAA);   /* untouched */
    }
    /* SIZE_E 3 with OD_BYPASS = 0 (Mesa's CPEND path): 1024 bytes, then a hang (IR conv.rs) */
    p.n -= 2;
    emit(&p, RN_DPU_BS_OW_CFG, 0x36C);
    emit_open(&p, 0x1D);
    res = run_wide(&p, rn_quirks_default(), real, sizeof(real), W, H, C);
    g_assert_true(res.hang);
    g_assert_cmpuint(res.bytes_written, ==, 2 * W * H * 16 < 1024 ? 2 * W * H * 16 : 1024);
}

static void test_mrdma_trap_without_rdma(void)
{
    /* GN mrdma-trap.md: a generator that never writes the 0x5xxx block hangs, op_en 0x0D too */
    struct prog p = { .n = 0 };
    struct rn_kick_result res;
    static uint8_t out[512];
    conv_wide(&p, 4, 4, 16, 1, 1);
    p.n -= 2;
    emit(&p, RN_DPU_RDMA_FEATURE_MODE_CFG, 0);
    emit(&p, RN_DPU_BS_CFG, 0x20153);   /* no bias from memory: BS ALU bypassed */
    emit_open(&p, 0x0D);
    res = run_wide(&p, rn_quirks_default(), out, sizeof(out), 4, 4, 16);
    g_assert_true(res.hang);
    g_assert_cmphex(quirks_seen, ==, 1u << RN_QUIRK_MRDMA_TRAP);
    res = run_wide(&p, 0, out, sizeof(out), 4, 4, 16);
    g_assert_false(res.hang);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/quirks/overflow-sweeps", test_overflow_sweeps);
    g_test_add_func("/quirks/slab-wrap-boundary", test_slab_wrap_boundary);
    g_test_add_func("/quirks/cbuf-layout", test_cbuf_layout);
    g_test_add_func("/quirks/size-e-rule", test_size_e_rule);
    g_test_add_func("/quirks/switch", test_switch);
    g_test_add_func("/quirks/overflow-kick", test_overflow_kick);
    g_test_add_func("/quirks/short-entries-kick", test_short_entries_kick);
    g_test_add_func("/quirks/gating-and-size-e-kicks", test_gating_and_size_e_kicks);
    g_test_add_func("/quirks/mrdma-trap-without-rdma", test_mrdma_trap_without_rdma);
    return g_test_run();
}
