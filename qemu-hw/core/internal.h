/* Private interfaces between the core's files. */
#ifndef RKNPU_INTERNAL_H
#define RKNPU_INTERNAL_H

#include "quirks.h"
#include "rknpu.h"

#define REG(c, name) ((c)->regs[(RN_##name) / 4])

#if defined(__GNUC__)
#define RN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RN_PRINTF(a, b)
#endif

/* A loop over a task's elements that must vectorise whatever the build's -O (QEMU: -O2). */
#if defined(__GNUC__) && !defined(__clang__)
#define RN_VECTORISE __attribute__((optimize("O3")))
#else
#define RN_VECTORISE
#endif

void rn_logf(struct rn_core *c, enum rn_log_kind kind, const char *fmt, ...) RN_PRINTF(3, 4);

/* Growable scratch buffers, kept across tasks so a kick does not allocate per task. */
enum rn_buf { RN_BUF_REGCMD, RN_BUF_INPUT, RN_BUF_ROW, RN_BUF_WIDE, RN_BUF_PAD, RN_BUF_WEIGHTS,
              RN_BUF_WPACK, RN_BUF_GEMMW, RN_BUF_PATCH, RN_BUF_ACC, RN_BUF_SUM, RN_BUF_BIAS,
              RN_BUF_OPERAND, RN_BUF_OUT, RN_BUF_EW, RN_BUF_IMAGE, RN_BUF_CACC0, RN_BUF_CACC1,
              RN_BUF_CHAIN, RN_BUF_EW32, RN_BUF_VPACK, RN_BUF_VROWS, RN_BUF_VSUM, RN_BUF_VTMP,
              RN_BUF_MEMO, RN_BUF_FOLD, RN_BUF_COUNT };
/* Returns a buffer of at least @bytes (64-byte aligned), or NULL when @bytes is over the limit. */
void *rn_scratch(struct rn_core *c, enum rn_buf which, size_t bytes);
void *rn_scratch_in(struct rn_scratch **owner, enum rn_buf which, size_t bytes);
void rn_scratch_trim(struct rn_scratch *s, size_t keep);   /* free buffers over @keep bytes */
void rn_scratch_free(struct rn_scratch **owner);

/*
 * A task's output rows over the core's pool of c->threads host threads (threads.c): fn runs on
 * disjoint row ranges, each part with its own scratch (rn_part_scratch); the bytes are the same
 * for any number of threads. Returns the RN_ERR_* bits the parts met.
 */
struct rn_part;
typedef void rn_rows_fn(void *ctx, struct rn_part *part, uint32_t y0, uint32_t y1);
uint32_t rn_par_rows(struct rn_core *c, uint32_t rows, rn_rows_fn *fn, void *ctx);
void *rn_part_scratch(struct rn_part *part, enum rn_buf which, size_t bytes);
void rn_pool_trim(struct rn_core *c, size_t keep);
void rn_pool_destroy(struct rn_core *c);

/* Store a register as the regcmd stream or the host writes it (S_POINTER pulses included). */
void rn_store_block_reg(struct rn_core *c, uint32_t offset, uint32_t value);

/* A LUT_ACCESS_CFG / LUT_ACCESS_DATA write (lut.c). */
void rn_lut_write(struct rn_core *c, uint32_t offset, uint32_t value);

/* What one task's pipeline did. */
struct rn_task_outcome {
    uint32_t error;           /* RN_ERR_* */
    bool hang;
    bool wrote;               /* its memory writes began: a cancel no longer stops it */
    struct rn_task_stats st;
};

/*
 * Has rn_core_cancel() been called? Relaxed: the flag carries no data (the host takes the
 * kick's outcome under its own lock), and once set it stays set for the rest of the kick, so
 * every later check sees it too: work abandoned in a loop is never written out.
 */
static inline bool rn_cancelled(const struct rn_core *c)
{
    return atomic_load_explicit(&c->cancel, memory_order_relaxed) != 0;
}

/*
 * A task's DMA read in pieces of RN_DMA_CHUNK bytes, the cancel flag checked before each. False
 * on a fault (RN_ERR_DMA_READ in out->error) or when cancelled (buf is then partly filled).
 */
#define RN_DMA_CHUNK (1u << 20)
bool rn_dma_get(struct rn_core *c, const struct rn_mem *m, uint32_t iova, void *buf, size_t len,
                struct rn_task_outcome *out);

/* Output pixels, or work items of a similar size, between cancel checks in the compute loops. */
#define RN_CANCEL_BLOCK 64u

/*
 * A quirk's trigger held on this task: if it is switched on, log it once per task (naming the
 * quirk, the task and the numbers in fmt), count it in out->st.quirks and return true (apply the
 * effect); otherwise note it in out->st.quirks_off and return false.
 */
bool rn_quirk_fire(struct rn_core *c, struct rn_task_outcome *out, enum rn_quirk q,
                   const char *fmt, ...) RN_PRINTF(4, 5);

/* Run the blocks named by an op_en bitmap on the current register file. */
void rn_pipeline_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                     struct rn_task_outcome *out);

/* A pool task (PPU fed by PPU_RDMA, ppu.c, Q16); refuses any other op_en with the PPU. */
void rn_ppu_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                struct rn_task_outcome *out);

/* Cycle model for a finished task (fills st->cycles). */
void rn_cycles_estimate(const struct rn_timing *t, struct rn_task_stats *st);

#endif
