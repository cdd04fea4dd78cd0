/*
 * Cycle model v2. MAC cycles follow the RKNN runtime's own RK3588 cost model (fitted exactly to
 * its perf_detail tables, hardware-notes.md 4.2): a conv takes OH*OW*ceil(OC/32)*max(4,
 * ceil(IC/32)*KH*KW) cycles (1024 MAC/cycle when the kernel is deep enough), a depthwise
 * OH*OW*KH*KW*ceil(C/64) (64 MAC/cycle); the other precisions put their weight tiles in place of
 * the 32 x 32 (HARDWARE-UNKNOWNS Q19). DMA overlaps the MACs and moves 20 bytes per NPU cycle
 * (the same tables' DDR cycles: 872 KB in 44,071 cycles, 433 KB in 21,923), so at mainline's
 * 200 MHz it is clock-bound at 4 GB/s, and at most the DRAM's ~17 GB/s at higher clocks. A fixed
 * cost covers the regcmd fetch and pipeline fill/drain of every task (2000 cycles: a tiny task
 * costs ~11.7 us end to end at 600 MHz including its kernel round trip, hardware-notes 4.4).
 */
#include "hwchoices.h"
#include "internal.h"

void rn_timing_default(struct rn_timing *t)
{
    t->clock_hz = 200000000;           /* mainline DT: assigned-clock-rates 200 MHz */
    t->dma_bytes_per_sec = 17000000000; /* LPDDR4X, 17-22 GB/s measured sequential */
    t->dma_bytes_per_cycle = 20;
    t->task_overhead_cycles = 2000;
}

uint64_t rn_cycles_to_ns(const struct rn_timing *t, uint64_t cycles)
{
    uint64_t hz = t->clock_hz ? t->clock_hz : 1;
    return (uint64_t)((unsigned __int128)cycles * 1000000000u / hz);
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

void rn_cycles_estimate(const struct rn_timing *t, struct rn_task_stats *st)
{
    uint64_t pix = (uint64_t)st->out_w * st->out_h, taps = (uint64_t)st->kh * st->kw, mac, dma;
    uint64_t per;
    struct rn_prec p;
    /* other precisions (HARDWARE-UNKNOWNS Q19): one weight tile (N-group x K-group, 1024 bytes)
     * a cycle as for int8, so fp16 takes twice int8's cycles, int4 half, tf32 four times */
    if (!rn_prec_info(st->precision, &p)) {
        rn_prec_info(RN_CNA_INT8, &p);
    }
    if (st->pool) {
        /* not in the RKNN cost tables: one 16-channel window step per cycle (a guess, Q16) */
        mac = pix * taps * div_up(st->out_c, 16);
    } else if (st->depthwise) {
        mac = pix * taps * div_up(st->out_c, p.dw_group ? p.dw_group : 64);
    } else {
        per = div_up(st->in_c, p.kg) * taps;
        mac = pix * div_up(st->out_c, p.ng) * (per > 4 ? per : 4);
    }
    uint64_t bytes = st->bytes_read + st->bytes_written;
    if (t->dma_bytes_per_sec &&
        (unsigned __int128)t->dma_bytes_per_cycle * t->clock_hz > t->dma_bytes_per_sec) {
        /* the DRAM, not the NPU's clock, limits: bytes / bandwidth, in NPU cycles */
        dma = (uint64_t)((unsigned __int128)bytes * t->clock_hz / t->dma_bytes_per_sec);
    } else {
        dma = t->dma_bytes_per_cycle ? div_up(bytes, t->dma_bytes_per_cycle) : 0;
    }
    st->cycles = t->task_overhead_cycles + (mac > dma ? mac : dma);
}
