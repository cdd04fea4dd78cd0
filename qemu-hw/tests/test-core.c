/* Unit tests of the core model: register file, PC decode, interrupts, reset and error paths. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "conv.h"       /* rn_round_f32 */
#include "hwchoices.h"
#include "internal.h"   /* rn_cycles_estimate */
#include "kernels.h"
#include "rknpu.h"

#include "testlib.h"

/* ---- tests ---- */

/* Q19: an exact sum rounded once to fp32 (to nearest, ties to even; 2^-149 quantum; inf). */
static void test_f32_round(void)
{
    uint64_t m[3];
    m[0] = (1ull << 24) + 1, m[1] = 0, m[2] = 0;               /* a tie: to even */
    g_assert_cmpfloat(rn_round_f32(m, 3, 0, false), ==, 16777216.0f);
    m[0] = (1ull << 24) + 3;                                   /* a tie: up to even */
    g_assert_cmpfloat(rn_round_f32(m, 3, 0, true), ==, -16777220.0f);
    m[0] = ((1ull << 24) + 1) << 30 | 1;                       /* past the tie (sticky) */
    g_assert_cmpfloat(rn_round_f32(m, 3, -30, false), ==, 16777218.0f);
    m[0] = 0, m[1] = 1;                                        /* 2^64 in the second limb */
    g_assert_cmpfloat(rn_round_f32(m, 3, -64, false), ==, 1.0f);
    m[0] = 1, m[1] = 0;                                        /* 2^-150: a tie, to +0 */
    g_assert_cmpfloat(rn_round_f32(m, 3, -150, false), ==, 0.0f);
    m[0] = 3;                                                  /* 1.5 * 2^-150 */
    g_assert_cmpfloat(rn_round_f32(m, 3, -151, false), ==, 0x1p-149f);
    m[0] = 0xFFFFFF8000000000ull;                              /* rounds up past FLT_MAX */
    g_assert_true(isinf(rn_round_f32(m, 3, 64, false)));
    m[0] = 0;
    g_assert_cmpfloat(rn_round_f32(m, 3, 0, true), ==, 0.0f);
}

static void test_regdb(void)
{
    size_t n;
    const struct rn_reg_info *t = rn_reg_table(&n);
    g_assert_cmpuint(n, >, 190);
    for (size_t i = 0; i < n; i++) {
        uint32_t used = 0;
        g_assert_cmpuint(t[i].offset % 4, ==, 0);
        g_assert_true(rn_block_of(t[i].offset) == t[i].block);
        g_assert_true(rn_reg_lookup(t[i].offset) == &t[i]);
        if (i) {
            g_assert_cmpuint(t[i - 1].offset, <, t[i].offset);
        }
        for (unsigned f = 0; f < t[i].nfields; f++) {
            const struct rn_field_info *fi = &t[i].fields[f];
            uint32_t mask = (uint32_t)(((1ull << (fi->msb - fi->lsb + 1)) - 1) << fi->lsb);
            g_assert_cmpuint(fi->msb, <=, 31);
            g_assert_cmpuint(fi->lsb, <=, fi->msb);
            g_assert_cmpuint(used & mask, ==, 0);   /* fields never overlap */
            used |= mask;
        }
    }
    g_assert_null(rn_reg_lookup(0x2000));
    g_assert_null(rn_reg_lookup(0x1002));
    g_assert_cmpstr(rn_reg_lookup(RN_CNA_CONV_CON1)->name, ==, "CONV_CON1");
    g_assert_cmpuint(RN_FX(0x00020150, DPU, BS_CFG, BS_ALU_ALGO), ==, 2);
    g_assert_cmpuint(RN_DPU_RDMA_EW_SURF_NOTCH, ==, 0x506C);
}

static void test_reset_values(void)
{
    struct rn_core c;
    core_setup(&c);
    g_assert_cmphex(rn_core_read(&c, RN_PC_VERSION) +
                    (rn_core_read(&c, RN_PC_VERSION_NUM) & 0xFFFF), ==, 1179210309u);
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_MASK), ==, 0x1FFFF);
    g_assert_cmphex(rn_core_read(&c, RN_CORE_MAC_GATING), ==, 0x07800800);
    g_assert_cmphex(rn_core_read(&c, RN_DDMA_CFG_STATUS), ==, 0x100);
    g_assert_cmphex(rn_core_read(&c, RN_CNA_CONV_CON1), ==, 0);
    rn_core_write(&c, RN_CNA_CONV_CON1, 0x1234);
    rn_core_write(&c, RN_PC_INTERRUPT_MASK, 0x300);
    rn_core_reset(&c);
    g_assert_cmphex(rn_core_read(&c, RN_CNA_CONV_CON1), ==, 0);
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_MASK), ==, 0x1FFFF);
    rn_core_destroy(&c);
}

static void test_mmio_rules(void)
{
    struct rn_core c;
    core_setup(&c);
    rn_core_write(&c, RN_PC_VERSION, 5);   /* read-only */
    g_assert_cmphex(rn_core_read(&c, RN_PC_VERSION), ==, 0x46495245);
    g_assert_cmpuint(n_logs, ==, 1);
    g_assert_cmphex(rn_core_read(&c, 0x2000), ==, 0);   /* undecoded page */
    g_assert_cmphex(rn_core_read(&c, 0x1002), ==, 0);   /* unaligned */
    g_assert_cmphex(rn_core_read(&c, 0x10000), ==, 0);  /* outside the window */
    g_assert_false(rn_core_write(&c, 0x4FFC, 1));       /* hole in DPU */
    g_assert_cmpuint(n_logs, ==, 5);
    rn_core_write(&c, RN_PC_TASK_CON, 0x7001);           /* rocket's value */
    g_assert_cmphex(rn_core_read(&c, RN_PC_TASK_CON), ==, 0x1001);
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_CLEAR), ==, 0);
    rn_core_write(&c, RN_CNA_S_POINTER, 0x1000000E);
    g_assert_cmphex(rn_core_read(&c, RN_CNA_S_POINTER), ==, 0x1000000E);
    rn_core_write(&c, RN_CNA_S_POINTER, 0x1000001F);     /* POINTER_PP_CLEAR pulse */
    g_assert_cmphex(rn_core_read(&c, RN_CNA_S_POINTER), ==, 0x1000000E);
    rn_core_destroy(&c);
}

static void test_entry_decode(void)
{
    g_assert_cmpint(rn_entry_kind(0), ==, RN_ENTRY_NOP);
    g_assert_cmpint(rn_entry_kind(0x0041000000000000ull), ==, RN_ENTRY_MARKER);
    g_assert_cmpint(rn_entry_kind(0x00810000001D0008ull), ==, RN_ENTRY_OP_EN);
    g_assert_cmpint(rn_entry_kind(0x0201000F000F1078ull), ==, RN_ENTRY_WRITE);
    g_assert_cmpint(rn_entry_kind(0x0200000F000F1078ull), ==, RN_ENTRY_INVALID);
    g_assert_cmpint(rn_entry_kind(0x0001000000001078ull), ==, RN_ENTRY_INVALID);
    g_assert_cmphex(rn_entry_value(0x1001000201504040ull), ==, 0x00020150);
    g_assert_cmphex(rn_entry_offset(0x1001000201504040ull), ==, 0x4040);
    g_assert_cmphex(rn_entry_blocks(0x1001000201504040ull), ==, 1u << RN_BLK_DPU);
    g_assert_cmphex(rn_entry_blocks(0xFF01000000000000ull), ==, 0x7F);
    g_assert_cmpuint(RN_PC_FETCH_ENTRIES(64), ==, 130);
}

static void test_irq_line(void)
{
    struct rn_core c;
    core_setup(&c);
    g_assert_false(rn_core_irq_level(&c));
    c.regs[RN_PC_INTERRUPT_RAW_STATUS / 4] = RN_ERR_DMA_READ | RN_ERR_DMA_WRITE;
    g_assert_false(rn_core_irq_level(&c));   /* error bits alone never raise it */
    c.regs[RN_PC_INTERRUPT_RAW_STATUS / 4] |= RN_IRQ_DPU_1;
    g_assert_true(rn_core_irq_level(&c));
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_STATUS), ==, 0x3200);
    rn_core_write(&c, RN_PC_INTERRUPT_MASK, 0);
    g_assert_false(rn_core_irq_level(&c));
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_STATUS), ==, 0);
    rn_core_write(&c, RN_PC_INTERRUPT_MASK, 0x300);
    g_assert_true(rn_core_irq_level(&c));
    rn_core_write(&c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    g_assert_false(rn_core_irq_level(&c));
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_RAW_STATUS), ==, 0);
    rn_core_destroy(&c);
}

static void test_conv_kick(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct prog p = { .n = 0 };
    core_setup(&c);
    conv_1x1(&p, 0x4000);
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    conv_data();
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    g_assert_true(rn_core_irq_level(&c));
    g_assert_cmphex(rn_core_read(&c, RN_PC_TASK_STATUS), ==, RN_TASK_STATUS_DONE);
    for (int x = 0; x < 2; x++) {
        for (int o = 0; o < 2; o++) {
            g_assert_cmpint((int8_t)mem[0x4000 + x * 16 + o], ==, conv_expect(o, x));
        }
        for (int o = 2; o < 16; o++) {
            g_assert_cmphex(mem[0x4000 + x * 16 + o], ==, 0x55);   /* OFFSET_PEND */
        }
        g_assert_cmphex(mem[0x4000 + 32 + x * 16], ==, 0x55);      /* second surface */
    }
    g_assert_cmpuint(res.macs, ==, 2 * 2 * 16);
    g_assert_cmpuint(res.bytes_written, ==, 64);
    g_assert_cmpuint(n_logs, ==, 0);
    /* second kick: the DPU executer toggled (S_POINTER 0xE), so DPU_1 completes it */
    rn_core_write(&c, RN_PC_OPERATION_ENABLE, 0);
    rn_core_write(&c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_1);
    g_assert_cmphex(rn_core_read(&c, RN_DPU_S_POINTER) >> 16, ==, 0);
    rn_core_destroy(&c);
}

/* Two tasks linked in-stream; TASK_NUMBER decides how many run. */
static void test_task_number(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct prog a = { .n = 0 }, b = { .n = 0 };
    core_setup(&c);
    conv_1x1(&a, 0x4000);
    emit(&a, RN_PC_BASE_ADDRESS, 0x800);
    emit(&a, RN_PC_REGISTER_AMOUNTS, 64);
    emit_open(&a, 0x1D);
    conv_1x1(&b, 0x5000);
    emit(&b, RN_PC_BASE_ADDRESS, 0x800);   /* dangling trailer link back to itself */
    emit(&b, RN_PC_REGISTER_AMOUNTS, 64);
    emit_open(&b, 0x1D);
    store_prog(&a, 0);
    store_prog(&b, 0x800);
    conv_data();

    kick(&c, 0, 130, 0x7001, &res);   /* mainline: one task per kick */
    g_assert_cmpuint(res.tasks, ==, 1);
    g_assert_cmphex(mem[0x5000 + 2], ==, 0);
    rn_core_write(&c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    rn_core_write(&c, RN_PC_OPERATION_ENABLE, 0);

    kick(&c, 0, 130, 0x7003, &res);   /* three tasks: the trailer of task 1 is followed once */
    g_assert_cmpuint(res.tasks, ==, 3);
    g_assert_cmphex(mem[0x5000 + 2], ==, 0x55);
    g_assert_cmphex(rn_core_read(&c, RN_PC_INTERRUPT_RAW_STATUS) & 0x300, !=, 0);
    rn_core_destroy(&c);
}

/* ---- cancellation (rn_core_cancel from another thread: here from inside a DMA) ---- */

static struct rn_core *cancel_core;
static unsigned cancel_reads, cancel_writes, cancel_at_read, cancel_at_write;

static int cancelling_rd(void *o, uint32_t iova, void *buf, size_t len)
{
    if (++cancel_reads == cancel_at_read) {
        rn_core_cancel(cancel_core);
    }
    return mem_rd(o, iova, buf, len);
}

static int cancelling_wr(void *o, uint32_t iova, const void *buf, size_t len)
{
    if (++cancel_writes == cancel_at_write) {
        rn_core_cancel(cancel_core);
    }
    return mem_wr(o, iova, buf, len);
}

/*
 * A kick as the QEMU device runs it: on a private copy from the kick's snapshot, again from
 * the snapshot while it comes back cancelled, then adopted. Returns the first run's result.
 */
static void kick_cancelled(struct rn_core *c, struct rn_core *w, uint32_t task_con,
                           struct rn_kick_result *first, struct rn_kick_result *res)
{
    static const struct rn_mem m = { NULL, cancelling_rd, cancelling_wr };
    rn_core_write(c, RN_PC_BASE_ADDRESS, 0);
    rn_core_write(c, RN_PC_REGISTER_AMOUNTS, 64);
    rn_core_write(c, RN_PC_INTERRUPT_MASK, 0x300);
    rn_core_write(c, RN_PC_TASK_CON, task_con);
    g_assert_true(rn_core_write(c, RN_PC_OPERATION_ENABLE, 1));
    cancel_core = w;
    cancel_reads = cancel_writes = 0;
    for (int run = 0; run < 2; run++) {
        memcpy(w->regs, c->regs, sizeof(w->regs));
        w->executer = c->executer;
        w->task_count = 0;
        atomic_store(&w->cancel, 0);
        rn_core_run(w, &m, run ? res : first);
        if (!first->cancelled) {
            *res = *first;
            break;
        }
        cancel_at_read = cancel_at_write = 0;
    }
    g_assert_false(res->cancelled);
    rn_core_adopt(c, w);
    rn_core_complete(c, res);
}

/*
 * A cancel during a task's reads stops it before it writes anything (and it is not reported);
 * one during its writes lets it finish. Either way the kick ends as an uncancelled one does,
 * to the byte, a conv whose output overwrites its own input included. (Not a kick whose task
 * overwrites an earlier task's input: its re-run starts from the first task again.)
 */
static void test_cancel(void)
{
    static uint8_t expect[MEM_SIZE], before[MEM_SIZE];
    struct rn_core c, w;
    struct rn_kick_result first, res;
    for (int in_place = 0; in_place < 2; in_place++) {
        uint32_t ntasks = in_place ? 1 : 2;
        struct prog a = { .n = 0 }, b = { .n = 0 };
        core_setup(&c);
        rn_core_init(&w);
        conv_1x1(&a, in_place ? 0x1000 : 0x4000);
        emit(&a, RN_PC_BASE_ADDRESS, 0x800);
        emit(&a, RN_PC_REGISTER_AMOUNTS, 64);
        emit_open(&a, 0x1D);
        conv_1x1(&b, 0x5000);
        emit_open(&b, 0x1D);
        store_prog(&a, 0);
        store_prog(&b, 0x800);
        conv_data();
        memcpy(before, mem, sizeof(mem));
        cancel_at_read = cancel_at_write = 0;
        kick_cancelled(&c, &w, 0x7000 | ntasks, &first, &res);
        g_assert_cmpuint(res.tasks, ==, ntasks);
        g_assert_cmpuint(cancel_reads, ==, 4 * ntasks);   /* regcmd, input, weights, bias */
        g_assert_cmpuint(cancel_writes, ==, 2 * ntasks);  /* two output surfaces */
        memcpy(expect, mem, sizeof(mem));
        for (unsigned at = 1; at <= 4 * ntasks; at++) {
            for (int writing = 0; writing < 2; writing++) {
                memcpy(mem, before, sizeof(mem));
                rn_core_reset(&c);
                cancel_at_read = writing ? 0 : at;
                cancel_at_write = writing ? at : 0;
                kick_cancelled(&c, &w, 0x7000 | ntasks, &first, &res);
                g_assert_cmpmem(mem, sizeof(mem), expect, sizeof(expect));
                g_assert_cmpuint(res.tasks, ==, ntasks);
                if (!writing && at <= 4) {   /* in task 0's reads: nothing written, nothing run */
                    g_assert_true(first.cancelled);
                    g_assert_cmpuint(first.tasks, ==, 0);
                }
                if (writing && at <= 2) {   /* task 0 finishes; the kick stops after it, if any */
                    g_assert_cmpint(first.cancelled, ==, ntasks > 1);
                    g_assert_cmpuint(first.tasks, ==, 1);
                }
            }
        }
        rn_core_destroy(&w);
        rn_core_destroy(&c);
    }
}

static void expect_error(struct rn_core *c, uint32_t task_con, uint32_t bits)
{
    struct rn_kick_result res;
    kick(c, 0, 130, task_con, &res);
    g_assert_false(res.hang);
    g_assert_cmphex(res.raw_bits & (RN_ERR_DMA_READ | RN_ERR_DMA_WRITE), ==, bits);
    g_assert_cmphex(res.raw_bits & 0xF00, !=, 0);   /* a completion bit: the handler runs */
    g_assert_cmpint(rn_core_irq_level(c), ==, (res.raw_bits & 0x300) != 0);   /* mask 0x300 */
    rn_core_write(c, RN_PC_INTERRUPT_CLEAR, 0x1FFFF);
    rn_core_write(c, RN_PC_OPERATION_ENABLE, 0);
}

static void test_errors(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct prog p = { .n = 0 };
    core_setup(&c);
    expect_error(&c, 0x7001, RN_ERR_DMA_READ);   /* all-zero regcmd: no op_en */
    expect_error(&c, 0x7000, RN_ERR_DMA_READ);   /* TASK_NUMBER 0 */

    conv_1x1(&p, MEM_SIZE - 16);                 /* output runs off the mapped memory */
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    expect_error(&c, 0x7001, RN_ERR_DMA_WRITE);

    p.n = 0;
    conv_1x1(&p, 0x4000);
    emit(&p, RN_CNA_FEATURE_DATA_ADDR, 0xFFFFF000);   /* input unmapped */
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    expect_error(&c, 0x7001, RN_ERR_DMA_READ);

    p.n = 0;
    conv_1x1(&p, 0x4000);
    emit(&p, RN_CNA_DATA_SIZE0, 0x07FF07FF);          /* 2047 x 2047 ... */
    emit(&p, RN_CNA_DATA_SIZE1, 0xFFFF);              /* ... x 65535 channels */
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    expect_error(&c, 0x7001, RN_ERR_DMA_READ);

    p.n = 0;
    emit_open(&p, 0x20);                              /* PPU fed by the DPU: not modelled */
    store_prog(&p, 0);
    expect_error(&c, 0x7001, RN_ERR_DMA_READ);

    rn_core_write(&c, RN_PC_BASE_ADDRESS, 0xFFFFF000);  /* regcmd fetch faults */
    rn_core_write(&c, RN_PC_TASK_CON, 1);
    g_assert_true(rn_core_write(&c, RN_PC_OPERATION_ENABLE, 1));
    rn_core_kick_sync(&c, &flat, &res);
    g_assert_cmphex(res.raw_bits, ==, RN_ERR_DMA_READ | RN_IRQ_DPU_0);
    rn_core_destroy(&c);
}

static void test_hang_and_reset(void)
{
    struct rn_core c;
    struct rn_kick_result res;
    struct prog p = { .n = 0 };
    core_setup(&c);
    conv_1x1(&p, 0x4000);
    emit(&p, RN_DPU_RDMA_FEATURE_MODE_CFG, 0x7800);   /* MRDMA on, nothing feeding it */
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    conv_data();
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_true(res.hang);
    g_assert_false(rn_core_irq_level(&c));
    g_assert_false(rn_core_write(&c, RN_PC_OPERATION_ENABLE, 1));   /* still busy */
    rn_core_reset(&c);
    p.n = 0;
    conv_1x1(&p, 0x4000);
    emit_open(&p, 0x1D);
    store_prog(&p, 0);
    kick(&c, 0, p.n, 0x7001, &res);
    g_assert_false(res.hang);
    g_assert_cmphex(res.raw_bits, ==, RN_IRQ_DPU_0);
    rn_core_destroy(&c);
}

/* The GEMM on this host's kernels (with its weight packing) against a plain triple loop. */
static void test_gemm(void)
{
    uint32_t x = 12345;
    for (size_t npix = 1; npix <= 9; npix += 2) {
        for (size_t no = 4; no <= 52; no += 12) {
            for (size_t kp = RN_KP_ALIGN; kp <= 3 * RN_KP_ALIGN; kp += RN_KP_ALIGN) {
                uint8_t *a = g_malloc(npix * kp);
                int8_t *w = g_malloc(no * kp), *pk = g_malloc(rn_gemm_packed_size(no, kp));
                int32_t *acc = g_malloc(npix * no * sizeof(int32_t));
                for (size_t i = 0; i < npix * kp; i++) {
                    a[i] = (uint8_t)((x = x * 1664525u + 1013904223u) >> 24);
                }
                for (size_t i = 0; i < no * kp; i++) {
                    w[i] = (int8_t)((x = x * 1664525u + 1013904223u) >> 24);
                }
                rn_gemm_pack(w, no, kp, pk);
                rn_gemm_u8s8(a, npix, pk, no, kp, acc);
                for (size_t p = 0; p < npix; p++) {
                    for (size_t o = 0; o < no; o++) {
                        int32_t want = 0;
                        for (size_t i = 0; i < kp; i++) {
                            want += a[p * kp + i] * w[o * kp + i];
                        }
                        g_assert_cmpint(acc[p * no + o], ==, want);
                    }
                }
                g_free(a), g_free(w), g_free(pk), g_free(acc);
            }
        }
    }
}

/* The DPU fast path against the rules in hwchoices.h (Q7, Q8, OUT_CVT), with CLIP_TRUNCATE. */
static void test_dpu_fast(void)
{
    uint32_t x = 777;
    for (uint32_t trunc = 0; trunc <= 9; trunc++) {
        for (int up = 0; up <= 1; up++) {
            /* OUT_CVT x1 (0x4000 >> 14) and small sums, so a rounding slip shows in out */
            struct rn_dpu_fast f = { .ow_op = -13, .trunc = trunc, .trunc_half_up = up,
                                     .out_scale = 0x4000, .out_shift = 14, .out_offset = -5 };
            int32_t acc[16], bias[16], wsum[16];
            int8_t e[16] = { 0 }, out[16];
            for (int round = 0; round < 200; round++) {
                for (int l = 0; l < 16; l++) {
                    acc[l] = (int32_t)(x = x * 1664525u + 1013904223u) >> (25 - trunc);
                    bias[l] = (int32_t)(x = x * 1664525u + 1013904223u) >> 28;
                    wsum[l] = (int32_t)(x = x * 1664525u + 1013904223u) >> 29;
                }
                rn_dpu_fast_atom(&f, acc, bias, wsum, e, out);
                for (int l = 0; l < 16; l++) {
                    int64_t v = rn_clip_truncate(acc[l] + rn_cpend((uint32_t)f.ow_op, wsum[l]),
                                                 trunc, up) + bias[l];
                    g_assert_cmpint(out[l], ==, rn_out_cvt(rn_sat32(v), 0x4000, 14,
                                                           (uint32_t)-5));
                }
            }
        }
    }
}

/* RKNN's perf_detail examples (hardware-notes 4.2), which the MAC term must reproduce exactly. */
static void test_cycle_model(void)
{
    static const struct { bool dw; uint32_t ic, oc, k, hw; uint64_t cycles; } rknn[] = {
        { false, 128, 64, 3, 80, 460800 }, { true, 128, 128, 3, 80, 115200 },
        { false, 256, 512, 1, 20, 51200 }, { false, 64, 64, 1, 40, 12800 },
    };
    struct rn_timing t;
    rn_timing_default(&t);
    t.task_overhead_cycles = 0;
    for (size_t i = 0; i < sizeof(rknn) / sizeof(rknn[0]); i++) {
        struct rn_task_stats st = { .depthwise = rknn[i].dw, .in_c = rknn[i].ic,
                                    .out_c = rknn[i].oc, .kw = rknn[i].k, .kh = rknn[i].k,
                                    .out_w = rknn[i].hw, .out_h = rknn[i].hw };
        rn_cycles_estimate(&t, &st);
        g_assert_cmpuint(st.cycles, ==, rknn[i].cycles);
    }
    /* DMA-bound: 872 KB took 44,071 DDR cycles in RKNN's tables; 20 B/cycle gives 43,600 */
    struct rn_task_stats big = { .in_c = 16, .out_c = 16, .kw = 1, .kh = 1, .out_w = 1,
                                 .out_h = 1, .bytes_read = 872000 };
    rn_cycles_estimate(&t, &big);
    g_assert_cmpuint(big.cycles, ==, 43600);
    t.clock_hz = 1000000000;   /* at 1 GHz the DRAM (17 GB/s) limits, not 20 B/cycle */
    rn_cycles_estimate(&t, &big);
    g_assert_cmpuint(big.cycles, ==, 872000ull * 1000000000 / 17000000000);
}

static void test_rounding(void)
{
    /* half to even vs half up, both signs */
    g_assert_cmpint(rn_round_shift(5, 1, false), ==, 2);
    g_assert_cmpint(rn_round_shift(7, 1, false), ==, 4);
    g_assert_cmpint(rn_round_shift(-5, 1, false), ==, -2);
    g_assert_cmpint(rn_round_shift(-7, 1, false), ==, -4);
    g_assert_cmpint(rn_round_shift(5, 1, true), ==, 3);
    g_assert_cmpint(rn_round_shift(-5, 1, true), ==, -2);
    g_assert_cmpint(rn_round_shift(-6, 2, false), ==, -2);
    g_assert_cmpint(rn_round_shift(1000, 63, false), ==, 0);
    /* OUT_CVT: 0x8000 is -32768; offset after the shift */
    g_assert_cmpint(rn_out_cvt(3, 0x8000, 16, 0), ==, -2);   /* -1.5 -> -2 (even) */
    /* CVT_ROUND = 1: ties away from zero, as GN measured: 0.5 -> 1, 1.5 -> 2, -0.5 -> -1,
     * -1.5 -> -2; CVT_ROUND = 0 gives 0, 2, 0, -2 */
    static const int32_t tie[4] = { 1, 3, -1, -3 }, away[4] = { 1, 2, -1, -2 },
                         even[4] = { 0, 2, 0, -2 };
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(rn_out_cvt(tie[i], 1, 1u | 1u << 30, 0), ==, away[i]);
        g_assert_cmpint(rn_out_cvt(tie[i], 1, 1u, 0), ==, even[i]);
    }
    g_assert_cmpint(rn_out_cvt(100, 0x4000, 14, 5), ==, 105);
    g_assert_cmpint(rn_out_cvt(1000, 0x4000, 14, 0), ==, 127);
    /* Mesa's 1-channel converter gives u8 - 128 */
    struct rn_cvt_lane l = { 16384, -128, 14 };
    for (int u = 0; u < 256; u++) {
        g_assert_cmpint(rn_cna_cvt((uint8_t)u, false, false, false, &l), ==, u - 128);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/regdb", test_regdb);
    g_test_add_func("/core/reset-values", test_reset_values);
    g_test_add_func("/core/mmio-rules", test_mmio_rules);
    g_test_add_func("/core/entry-decode", test_entry_decode);
    g_test_add_func("/core/irq-line", test_irq_line);
    g_test_add_func("/core/conv-kick", test_conv_kick);
    g_test_add_func("/core/task-number", test_task_number);
    g_test_add_func("/core/errors", test_errors);
    g_test_add_func("/core/cancel", test_cancel);
    g_test_add_func("/core/hang-and-reset", test_hang_and_reset);
    g_test_add_func("/core/rounding", test_rounding);
    g_test_add_func("/core/f32-round", test_f32_round);
    g_test_add_func("/core/cycle-model", test_cycle_model);
    g_test_add_func("/core/gemm", test_gemm);
    g_test_add_func("/core/dpu-fast", test_dpu_fast);
    return g_test_run();
}
