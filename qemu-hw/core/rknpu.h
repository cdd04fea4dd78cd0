/*
 * rocketsim NPU core model: one RK3588 NPU core (PC, CNA, CORE, DPU, DPU_RDMA, PPU blocks) as a
 * plain C library. The host (QEMU device, rknpu-run, tests, fuzzer) owns memory and time:
 * it forwards MMIO, runs kicks when told to, and supplies a DMA interface that may fail.
 */
#ifndef RKNPU_H
#define RKNPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regdb.h"

#define RN_WINDOW_SIZE 0x10000u          /* one core's MMIO window */
#define RN_WORDS (RN_WINDOW_SIZE / 4)

/* INTERRUPT_RAW_STATUS bits (TRM). */
#define RN_IRQ_DPU_0 (1u << 8)
#define RN_IRQ_DPU_1 (1u << 9)
#define RN_IRQ_PPU_0 (1u << 10)
#define RN_IRQ_PPU_1 (1u << 11)
#define RN_ERR_DMA_READ (1u << 12)
#define RN_ERR_DMA_WRITE (1u << 13)
#define RN_IRQ_ALL 0x1FFFFu

#define RN_LUT_ENTRIES 513               /* each of the DPU's two LUTs (LE, LO) */

/*
 * DMA as seen by the NPU: NPU addresses (IOVAs) through whatever translation the host applies.
 * Return 0 on success, non-zero when any byte of the access faults. The core never touches memory
 * any other way.
 */
struct rn_mem {
    void *opaque;
    int (*read)(void *opaque, uint32_t iova, void *buf, size_t len);
    int (*write)(void *opaque, uint32_t iova, const void *buf, size_t len);
};

enum rn_log_kind { RN_LOG_GUEST_ERROR, RN_LOG_UNIMP };
typedef void rn_log_fn(void *opaque, enum rn_log_kind kind, const char *msg);

/* Cycle model parameters (see cycles.c). */
struct rn_timing {
    uint64_t clock_hz;              /* NPU core clock; mainline DT: 200 MHz */
    uint64_t dma_bytes_per_sec;     /* DRAM bandwidth one core can get, at most */
    uint32_t dma_bytes_per_cycle;   /* what the NPU's DMA moves per NPU clock */
    uint32_t task_overhead_cycles;  /* regcmd fetch, pipeline fill and drain per task */
};

/* What one task did; handed to the host's on_task hook. */
struct rn_task_stats {
    uint32_t kick_task;             /* index of the task within its kick */
    uint32_t regcmd_iova;
    uint32_t op_en;                 /* block bitmap of the op_en entry */
    uint32_t error;                 /* RN_ERR_* bits this task raised */
    bool depthwise, ew;
    bool pool;                      /* a PPU pooling task */
    uint32_t precision;             /* CNA/CORE precision (HARDWARE-UNKNOWNS Q19): 0 int8 */
    uint32_t in_w, in_h, in_c, out_w, out_h, out_c, kw, kh, stride;
    uint64_t macs, bytes_read, bytes_written, cycles;
    uint32_t quirks;                /* bits (enum rn_quirk) of the quirks that fired and applied */
    uint32_t quirks_off;            /* quirks whose trigger held but that are switched off */
};

/* Outcome of a kick. */
struct rn_kick_result {
    uint32_t tasks;                 /* tasks executed */
    uint32_t raw_bits;              /* bits for INTERRUPT_RAW_STATUS */
    bool hang;                      /* modelled hang: no interrupt until reset */
    bool cancelled;                 /* rn_core_cancel() stopped it */
    uint64_t macs, bytes_read, bytes_written, cycles;
};

struct rn_scratch;
struct rn_pool;

#define RN_MAX_THREADS 16

struct rn_core {
    uint32_t regs[RN_WORDS];        /* one register group per block (HARDWARE-UNKNOWNS Q2) */
    uint32_t executer;              /* per block (bit = enum rn_block): S_POINTER.EXECUTER */
    uint32_t task_count;            /* TASK_STATUS[11:0] */
    bool kicked;                    /* a kick was requested and not yet completed */
    struct rn_timing timing;
    uint32_t quirks;                /* enum rn_quirk bits applied (rn_quirks_default() at init) */
    uint32_t index;                 /* core index (0..2), for S_POINTER's core bits */
    rn_log_fn *log;
    void *log_opaque;
    void (*on_task)(void *opaque, const struct rn_task_stats *st);
    void *task_opaque;
    atomic_int cancel;              /* set from another thread to abandon a running kick */
    uint32_t cacc_pixels;           /* pixels of the previous task's CACC residue; 0: cleared */
    uint32_t cacc_flip;             /* which of the two residue buffers holds it */
    int16_t lut[2][RN_LUT_ENTRIES]; /* the DPU's LUT RAM: LE, LO (written by LUT_ACCESS_DATA) */
    uint32_t lut_table, lut_addr;   /* where the next LUT_ACCESS_DATA goes */
    struct rn_scratch *scratch;     /* reusable buffers of the pipeline */
    uint32_t threads;               /* host threads per task, up to RN_MAX_THREADS (0, 1: none) */
    struct rn_pool *pool;           /* their pool, started on first use (threads.c) */
};

void rn_timing_default(struct rn_timing *t);

void rn_core_init(struct rn_core *c);
/* Threads per task for this host: 1 (off) when the process may use 2 CPUs or fewer. */
uint32_t rn_threads_auto(void);
void rn_core_destroy(struct rn_core *c);
/* Hardware reset (srst_a/srst_h): registers to reset values, ping-pong state cleared. */
void rn_core_reset(struct rn_core *c);

/* 32-bit MMIO access at an offset of the core's window. */
uint32_t rn_core_read(struct rn_core *c, uint32_t offset);
/* Returns true when the write requests a kick: call rn_core_run(), then rn_core_complete(). */
bool rn_core_write(struct rn_core *c, uint32_t offset, uint32_t value);
/* Level of the core's interrupt line. */
bool rn_core_irq_level(const struct rn_core *c);

/*
 * Execute the requested kick: fetch regcmds, apply them, run TASK_NUMBER tasks through the
 * pipeline. Touches only the register file and memory through @mem; may run on a worker thread
 * on a private copy of the core (see rn_core_adopt()).
 */
void rn_core_run(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res);
/* Latch a kick's outcome: raw status bits, TASK_STATUS. */
void rn_core_complete(struct rn_core *c, const struct rn_kick_result *res);
/* Take the state a kick produced on a private copy @work into the live core @c. */
void rn_core_adopt(struct rn_core *c, const struct rn_core *work);
/*
 * Ask a running rn_core_run() (on another thread) to stop soon: it checks inside every long loop
 * and DMA. A task that has begun writing memory runs to its end; one stopped before that is not
 * reported (no on_task, not in res->tasks) and the kick ends with res->cancelled.
 */
void rn_core_cancel(struct rn_core *c);

/*
 * Give back scratch buffers larger than keep bytes (one huge task must not pin its buffers:
 * rn_core_run() trims to RN_SCRATCH_KEEP after every kick).
 */
void rn_core_trim(struct rn_core *c, size_t keep);
#define RN_SCRATCH_KEEP (16u << 20)

/* Convenience for hosts without threads: run + complete. */
void rn_core_kick_sync(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res);

/* Nanoseconds of modelled NPU time for a number of cycles. */
uint64_t rn_cycles_to_ns(const struct rn_timing *t, uint64_t cycles);

#endif
