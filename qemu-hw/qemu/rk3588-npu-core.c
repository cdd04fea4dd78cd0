/*
 * One RK3588 NPU core: the rocketsim core model (qemu-hw/core) behind a 64 KiB MMIO window.
 *
 * A kick copies the register file to a worker thread, which fetches regcmds and computes through
 * the core's IOMMU while the vCPUs run on. The interrupt is raised on QEMU_CLOCK_VIRTUAL at the
 * cycle model's completion time, and never before the arithmetic is done. Under -icount a guard
 * timer keeps virtual time from warping past the kick (to the driver's 500 ms timeout, say) while
 * the worker computes, in bounded slices. Worker DMA touches guest RAM only, so the worker never
 * needs the BQL, and the main loop never waits for a kick: a reset or a VM stop cancels it at the
 * core's next cancel point (a few milliseconds of work apart), and a kick cancelled by a stop
 * runs again from its snapshot when the VM runs again (here or on a migration destination).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "exec/icount.h"
#include "hw/irq.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/memory.h"
#include "system/runstate.h"
#include "rk3588-npu.h"
#include "trace.h"

#define ICOUNT_GUARD_NS 20000   /* virtual time granted to the worker before the vCPU waits */
#define ICOUNT_WAIT_MS 2        /* the longest the vCPU then waits with the BQL held ... */
#define ICOUNT_STEP_NS 1000     /* ... before granting this much more virtual time */
#define KICK_LOG_LINES 64       /* guest-error lines per kick: a regcmd can raise millions */
#define DMA_STEP 4096           /* NPU DMA under one RCU read section at most */

static void npu_log(void *opaque, enum rn_log_kind kind, const char *msg)
{
    RK3588NPUCoreState *s = opaque;
    qemu_log_mask(kind == RN_LOG_UNIMP ? LOG_UNIMP : LOG_GUEST_ERROR, "rk3588-npu%u: %s\n",
                  s->index, msg);
}

/* Messages of the kick the worker runs: the first KICK_LOG_LINES, then only a count. */
static void npu_kick_log(void *opaque, enum rn_log_kind kind, const char *msg)
{
    RK3588NPUCoreState *s = opaque;
    if (!qemu_loglevel_mask(kind == RN_LOG_UNIMP ? LOG_UNIMP : LOG_GUEST_ERROR)) {
        return;
    }
    if (!s->log_left) {
        s->log_suppressed++;
        return;
    }
    s->log_left--;
    npu_log(s, kind, msg);
}

static void npu_on_task(void *opaque, const struct rn_task_stats *st)
{
    RK3588NPUCoreState *s = opaque;
    trace_rk3588_npu_task(s->index, st->kick_task, st->regcmd_iova, st->op_en, st->macs,
                          st->bytes_read, st->bytes_written, st->cycles, st->error);
    for (int q = 0; q < RN_QUIRK_COUNT; q++) {
        if ((st->quirks >> q) & 1) {
            trace_rk3588_npu_quirk(s->index, st->kick_task, rn_quirk_table[q].name);
        }
    }
}

/*
 * One page of NPU DMA through the IOMMU, RAM only. The FlatView and the RAM pointer are valid
 * inside the RCU read section only; holding it per page, not across a copy of up to 64 MiB,
 * keeps synchronize_rcu() (memory map changes, unplug) from waiting on the NPU.
 * Returns the bytes copied, 0 on a fault.
 */
static hwaddr npu_dma_step(RK3588NPUCoreState *s, uint64_t a, uint8_t *buf, hwaddr len,
                           bool write)
{
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    hwaddr xlat, l = MIN(len, DMA_STEP - (a & (DMA_STEP - 1)));
    MemoryRegion *mr;
    uint8_t *ram;
    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&s->dma_as, a, &xlat, &l, write, attrs);
    if (!l || !memory_access_is_direct(mr, write, attrs)) {
        return 0;
    }
    ram = qemu_map_ram_ptr(mr->ram_block, xlat);
    if (write) {
        memcpy(ram, buf, l);
        memory_region_set_dirty(mr, xlat, l);
    } else {
        memcpy(buf, ram, l);
    }
    return l;
}

/* NPU DMA: anything but RAM is a fault for the core (error bits). */
static int npu_dma(RK3588NPUCoreState *s, uint32_t iova, uint8_t *buf, size_t len, bool write)
{
    uint64_t a = iova;
    while (len) {
        hwaddr l;
        if (a >= (1ull << 32)) {
            return -1;
        }
        l = npu_dma_step(s, a, buf, len, write);
        if (!l) {
            return -1;
        }
        buf += l;
        a += l;
        len -= l;
    }
    return 0;
}

static int npu_dma_read(void *opaque, uint32_t iova, void *buf, size_t len)
{
    return npu_dma(opaque, iova, buf, len, false);
}

static int npu_dma_write(void *opaque, uint32_t iova, const void *buf, size_t len)
{
    return npu_dma(opaque, iova, (uint8_t *)buf, len, true);
}

static void npu_update_irq(RK3588NPUCoreState *s)
{
    qemu_set_irq(s->irq, rn_core_irq_level(&s->core));
}

static void *npu_worker(void *opaque)
{
    RK3588NPUCoreState *s = opaque;
    struct rn_core *w = s->work;
    struct rn_mem mem = { s, npu_dma_read, npu_dma_write };

    /* npu_dma, the IOMMU's table walk and qemu_log all read RCU-protected data */
    rcu_register_thread();
    qemu_mutex_lock(&s->lock);
    while (!s->quit) {
        struct rn_kick_result res;
        uint32_t gen;
        if (!s->job_pending) {
            qemu_cond_wait(&s->cond, &s->lock);
            continue;
        }
        /* the kick as the CPU programmed it (npu_start_kick writes it under the lock) */
        memcpy(w->regs, s->kick_regs, sizeof(w->regs));
        w->executer = s->kick_executer;
        memcpy(w->lut, s->kick_lut, sizeof(w->lut));
        w->lut_table = s->kick_lut_table;
        w->lut_addr = s->kick_lut_addr;
        w->task_count = 0;
        w->timing = s->core.timing;
        atomic_store_explicit(&w->cancel, 0, memory_order_relaxed);
        /* with the log off, spare the core formatting a message per regcmd entry */
        w->log = qemu_loglevel_mask(LOG_GUEST_ERROR | LOG_UNIMP) ? npu_kick_log : NULL;
        s->log_left = KICK_LOG_LINES;
        s->log_suppressed = 0;
        s->job_pending = false;
        s->busy = true;
        gen = s->job_gen;
        qemu_mutex_unlock(&s->lock);

        rn_core_run(w, &mem, &res);
        if (s->log_suppressed) {
            qemu_log_mask(LOG_GUEST_ERROR, "rk3588-npu%u: %u more messages of this kick "
                          "suppressed\n", s->index, s->log_suppressed);
        }

        qemu_mutex_lock(&s->lock);
        s->worker_result = res;
        s->done_gen = gen;
        s->job_done = true;
        s->busy = false;
        qemu_cond_broadcast(&s->cond);
        qemu_bh_schedule(s->done_bh);
    }
    qemu_mutex_unlock(&s->lock);
    rcu_unregister_thread();
    return NULL;
}

/* Withdraw the kick: drop it if the worker has not taken it, else stop it at the core's next
 * cancel point. Caller holds s->lock. */
static void npu_cancel_locked(RK3588NPUCoreState *s)
{
    s->job_pending = false;
    if (s->busy) {
        rn_core_cancel(s->work);
    }
}

/*
 * Hand the kick snapshot to the worker. A cancelled kick may still be finishing there: the
 * worker takes this one after it, and its generation tells the results apart, so the main
 * loop never waits here.
 */
static void npu_submit(RK3588NPUCoreState *s)
{
    qemu_mutex_lock(&s->lock);
    s->job_gen++;
    s->job_pending = true;
    s->job_done = false;
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
    s->kick_submitted = true;
    if (icount_enabled()) {
        timer_mod(s->timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + ICOUNT_GUARD_NS);
    }
}

static void npu_complete(RK3588NPUCoreState *s)
{
    rn_core_complete(&s->core, &s->result);
    s->phase = NPU_IDLE;
    /* vt_ns: the virtual time of the interrupt (and of the kick below), for timing studies */
    trace_rk3588_npu_done(s->index, s->result.tasks, s->result.raw_bits, s->result.cycles,
                          s->deadline_ns - s->kick_ns, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
    npu_update_irq(s);
}

/* Take the worker's result, if it belongs to the kick in flight and was not cancelled. */
static void npu_collect(RK3588NPUCoreState *s)
{
    struct rn_kick_result res;
    bool mine;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    uint64_t ns;
    qemu_mutex_lock(&s->lock);
    mine = s->job_done && s->done_gen == s->job_gen && !s->worker_result.cancelled;
    if (mine) {
        s->job_done = false;
        res = s->worker_result;
    }
    qemu_mutex_unlock(&s->lock);
    if (!mine || s->phase != NPU_COMPUTING) {
        return;
    }
    s->result = res;
    rn_core_adopt(&s->core, s->work);
    if (s->result.hang) {
        s->phase = NPU_HUNG;
        timer_del(s->timer);
        trace_rk3588_npu_hang(s->index);
        return;
    }
    ns = rn_cycles_to_ns(&s->core.timing, s->result.cycles);
    s->deadline_ns = ns > (uint64_t)(INT64_MAX - s->kick_ns) ? INT64_MAX : s->kick_ns + ns;
    if (s->deadline_ns <= now) {
        timer_del(s->timer);
        npu_complete(s);
    } else {
        s->phase = NPU_WAITING;
        timer_mod(s->timer, s->deadline_ns);
    }
}

static void npu_done_bh(void *opaque)
{
    npu_collect(opaque);
}

/* -icount guard: has the worker's result come in? Waits at most @ms with the BQL held. */
static bool npu_result_ready(RK3588NPUCoreState *s, int ms)
{
    int64_t end = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + ms, left;
    bool ready;
    qemu_mutex_lock(&s->lock);
    for (;;) {
        ready = s->job_done && s->done_gen == s->job_gen;
        left = end - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        if (ready || !s->kick_submitted || left <= 0) {
            break;
        }
        qemu_cond_timedwait(&s->cond, &s->lock, left);
    }
    qemu_mutex_unlock(&s->lock);
    return ready;
}

static void npu_timer(void *opaque)
{
    RK3588NPUCoreState *s = opaque;
    if (s->phase == NPU_COMPUTING) {
        /*
         * -icount: virtual time must not run past the kick while the worker computes, but the
         * vCPU waits with the BQL held, so only for a slice: then it gets a little virtual time
         * and comes back. A kick slower than ~2000x its modelled time completes late, not never.
         */
        if (npu_result_ready(s, ICOUNT_WAIT_MS)) {
            npu_collect(s);
        }
        if (s->phase == NPU_COMPUTING && icount_enabled()) {
            timer_mod(s->timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + ICOUNT_STEP_NS);
        }
    } else if (s->phase == NPU_WAITING) {
        npu_complete(s);
    }
}

static void npu_start_kick(RK3588NPUCoreState *s)
{
    /* the snapshot the worker runs, and re-runs after a stop or on a migration destination */
    qemu_mutex_lock(&s->lock);
    memcpy(s->kick_regs, s->core.regs, sizeof(s->kick_regs));
    s->kick_executer = s->core.executer;
    memcpy(s->kick_lut, s->core.lut, sizeof(s->kick_lut));   /* the DPU's LUT RAM (Q18) */
    s->kick_lut_table = s->core.lut_table;   /* else a re-run continues the first run's */
    s->kick_lut_addr = s->core.lut_addr;
    qemu_mutex_unlock(&s->lock);
    s->kick_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->phase = NPU_COMPUTING;
    s->kick_submitted = false;
    trace_rk3588_npu_kick(s->index, rn_core_read(&s->core, RN_PC_BASE_ADDRESS),
                          rn_core_read(&s->core, RN_PC_TASK_CON), s->kick_ns);
    if (runstate_is_running()) {   /* else (a debugger's write, say) it starts with the VM */
        npu_submit(s);
    }
}

/* srst_a/srst_h, or a system reset: abandon any kick and return to reset values. */
static void npu_hw_reset(RK3588NPUCoreState *s)
{
    timer_del(s->timer);
    qemu_mutex_lock(&s->lock);
    npu_cancel_locked(s);
    s->job_gen++;   /* whatever the worker still finishes is stale */
    qemu_mutex_unlock(&s->lock);
    if (s->phase == NPU_COMPUTING) {
        trace_rk3588_npu_abort(s->index);
    }
    s->phase = NPU_IDLE;
    s->kick_submitted = false;
    rn_core_reset(&s->core);
    npu_update_irq(s);
}

static void npu_reset_line(void *opaque, int line, int level)
{
    RK3588NPUCoreState *s = opaque;
    bool was_held = s->reset_held;
    s->reset_lines = level ? s->reset_lines | (1u << line) : s->reset_lines & ~(1u << line);
    s->reset_held = s->reset_lines != 0;
    if (s->reset_held && !was_held) {
        trace_rk3588_npu_reset(s->index);
        npu_hw_reset(s);
    }
}

static uint64_t npu_read(void *opaque, hwaddr addr, unsigned size)
{
    RK3588NPUCoreState *s = opaque;
    uint32_t v = rn_core_read(&s->core, addr);
    trace_rk3588_npu_read(s->index, addr, v);
    return v;
}

static void npu_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    RK3588NPUCoreState *s = opaque;
    trace_rk3588_npu_write(s->index, addr, val);
    if (s->reset_held) {
        qemu_log_mask(LOG_GUEST_ERROR, "rk3588-npu%u: write 0x%" PRIx64 " to 0x%" HWADDR_PRIx
                      " while the core is held in reset\n", s->index, val, addr);
        return;
    }
    if (rn_core_write(&s->core, addr, val)) {
        npu_start_kick(s);
    }
    npu_update_irq(s);
}

static const MemoryRegionOps npu_ops = {
    .read = npu_read,
    .write = npu_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
};

/*
 * The VM stops (stop, savevm, migration, quit, SIGTERM): guest RAM must not change any more,
 * and that must not wait for a kick that can run for minutes. Cancel it at the core's next
 * cancel point (a few milliseconds of work apart); it runs again from its snapshot when the VM
 * runs again, here or on the migration destination, and completes once, to the same bytes.
 */
static void npu_suspend(RK3588NPUCoreState *s)
{
    bool finished;
    qemu_mutex_lock(&s->lock);
    if (s->phase == NPU_COMPUTING) {
        npu_cancel_locked(s);
    }
    while (s->busy) {   /* also a kick abandoned by a reset: it still writes RAM */
        qemu_cond_wait(&s->cond, &s->lock);
    }
    finished = s->job_done && s->done_gen == s->job_gen && !s->worker_result.cancelled;
    qemu_mutex_unlock(&s->lock);
    if (s->phase != NPU_COMPUTING) {
        return;
    }
    if (finished) {   /* it beat the cancel: keep its result */
        npu_collect(s);
    } else if (s->kick_submitted) {
        s->kick_submitted = false;
        trace_rk3588_npu_suspend(s->index);
    }
}

/* Before any core waits in npu_suspend(), ask every core's worker to stop: they wind down
 * together instead of one after another. */
static void npu_vm_state_prepare(void *opaque, bool running, RunState state)
{
    RK3588NPUCoreState *s = opaque;
    if (!running && s->phase == NPU_COMPUTING) {
        qemu_mutex_lock(&s->lock);
        npu_cancel_locked(s);
        qemu_mutex_unlock(&s->lock);
    }
}

static void npu_vm_state_change(void *opaque, bool running, RunState state)
{
    RK3588NPUCoreState *s = opaque;
    if (!running) {
        npu_suspend(s);
    } else if (s->phase == NPU_COMPUTING && !s->kick_submitted) {
        trace_rk3588_npu_rerun(s->index, s->kick_ns);
        npu_submit(s);
    }
}

static int npu_pre_save(void *opaque)
{
    npu_suspend(opaque);
    return 0;
}

static int npu_pre_load(void *opaque)
{
    RK3588NPUCoreState *s = opaque;
    s->kick_loaded = false;
    return 0;
}

static int npu_post_load(void *opaque, int version_id)
{
    RK3588NPUCoreState *s = opaque;
    if (s->phase > NPU_HUNG ||
        (s->phase == NPU_COMPUTING && !s->kick_loaded)) {   /* a corrupt stream: be kind */
        s->phase = NPU_IDLE;
        s->core.kicked = false;
    }
    /* nothing the worker did before the load counts; a kick in flight runs when the VM does */
    qemu_mutex_lock(&s->lock);
    s->job_gen++;
    s->job_done = false;
    qemu_mutex_unlock(&s->lock);
    s->kick_submitted = false;
    npu_update_irq(s);
    return 0;
}

static bool npu_kick_needed(void *opaque)
{
    RK3588NPUCoreState *s = opaque;
    return s->phase == NPU_COMPUTING;
}

static int npu_kick_post_load(void *opaque, int version_id)
{
    RK3588NPUCoreState *s = opaque;
    s->kick_loaded = true;
    return 0;
}

/* A kick cancelled by the stop: what the destination runs again (only sent then). */
static const VMStateDescription vmstate_npu_kick = {
    .name = TYPE_RK3588_NPU_CORE "/kick",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = npu_kick_needed,
    .post_load = npu_kick_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_ARRAY(kick_regs, RK3588NPUCoreState, RN_WORDS),
        VMSTATE_UINT32(kick_executer, RK3588NPUCoreState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_npu_core = {
    .name = TYPE_RK3588_NPU_CORE,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = npu_pre_save,
    .pre_load = npu_pre_load,
    .post_load = npu_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32_ARRAY(core.regs, RK3588NPUCoreState, RN_WORDS),
        VMSTATE_UINT32(core.executer, RK3588NPUCoreState),
        VMSTATE_UINT32(core.task_count, RK3588NPUCoreState),
        VMSTATE_BOOL(core.kicked, RK3588NPUCoreState),
        VMSTATE_UINT32(phase, RK3588NPUCoreState),
        VMSTATE_BOOL(reset_held, RK3588NPUCoreState),
        VMSTATE_UINT32(reset_lines, RK3588NPUCoreState),
        VMSTATE_INT64(kick_ns, RK3588NPUCoreState),
        VMSTATE_INT64(deadline_ns, RK3588NPUCoreState),
        VMSTATE_UINT32(result.tasks, RK3588NPUCoreState),
        VMSTATE_UINT32(result.raw_bits, RK3588NPUCoreState),
        VMSTATE_BOOL(result.hang, RK3588NPUCoreState),
        VMSTATE_UINT64(result.cycles, RK3588NPUCoreState),
        VMSTATE_TIMER_PTR(timer, RK3588NPUCoreState),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_npu_kick,
        NULL
    },
};

static void npu_core_realize(DeviceState *dev, Error **errp)
{
    RK3588NPUCoreState *s = RK3588_NPU_CORE(dev);
    uint32_t quirks;
    char err[200];
    if (!s->dma_mr) {
        error_setg(errp, "rk3588-npu-core: 'dma-mr' (the IOMMU region) is not set");
        return;
    }
    if (!s->clock_hz) {
        error_setg(errp, "rk3588-npu-core: clock-frequency must not be 0");
        return;
    }
    if (s->threads > RN_MAX_THREADS) {
        error_setg(errp, "rk3588-npu: threads must be 0 (as the host allows) to %d",
                   RN_MAX_THREADS);
        return;
    }
    address_space_init(&s->dma_as, s->dma_mr, "rk3588-npu-dma");
    memory_region_init_io(&s->mmio, OBJECT(s), &npu_ops, s, "rk3588-npu", RN_WINDOW_SIZE);
    sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->mmio);
    sysbus_init_irq(SYS_BUS_DEVICE(s), &s->irq);
    qdev_init_gpio_in(dev, npu_reset_line, 2);   /* srst_a, srst_h */

    if (rn_quirks_parse(s->quirks ? s->quirks : "on", &quirks, err, sizeof(err))) {
        error_setg(errp, "rk3588-npu: quirks: %s", err);
        return;
    }
    rn_core_init(&s->core);
    s->core.quirks = quirks;
    s->core.index = s->index;
    s->core.log = npu_log;
    s->core.log_opaque = s;
    s->core.timing.clock_hz = s->clock_hz;
    s->core.timing.dma_bytes_per_sec = s->dma_bytes_per_sec;
    s->core.timing.dma_bytes_per_cycle = s->dma_bytes_per_cycle;
    s->core.timing.task_overhead_cycles = s->task_overhead;
    s->work = g_new0(struct rn_core, 1);
    rn_core_init(s->work);
    s->work->quirks = quirks;
    s->work->index = s->index;
    s->work->threads = s->threads ? s->threads : rn_threads_auto();
    s->work->log = npu_kick_log;   /* set per kick by the worker */
    s->work->log_opaque = s;
    s->work->on_task = npu_on_task;
    s->work->task_opaque = s;

    s->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, npu_timer, s);
    s->done_bh = qemu_bh_new(npu_done_bh, s);
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->cond);
    qemu_thread_create(&s->thread, "rk3588-npu", npu_worker, s, QEMU_THREAD_JOINABLE);
    qemu_add_vm_change_state_handler_prio_full(npu_vm_state_change, npu_vm_state_prepare,
                                               NULL, s, 0);
}

static void npu_core_reset_hold(Object *obj, ResetType type)
{
    RK3588NPUCoreState *s = RK3588_NPU_CORE(obj);
    s->reset_lines = 0;
    s->reset_held = false;
    npu_hw_reset(s);
}

static const Property npu_core_properties[] = {
    DEFINE_PROP_UINT32("index", RK3588NPUCoreState, index, 0),
    DEFINE_PROP_UINT64("clock-frequency", RK3588NPUCoreState, clock_hz, 200000000),
    DEFINE_PROP_UINT64("dma-bandwidth", RK3588NPUCoreState, dma_bytes_per_sec, 17000000000),
    DEFINE_PROP_UINT32("dma-bytes-per-cycle", RK3588NPUCoreState, dma_bytes_per_cycle, 20),
    DEFINE_PROP_UINT32("task-overhead", RK3588NPUCoreState, task_overhead, 2000),
    DEFINE_PROP_STRING("quirks", RK3588NPUCoreState, quirks),
    DEFINE_PROP_UINT32("threads", RK3588NPUCoreState, threads, 0),
    DEFINE_PROP_LINK("dma-mr", RK3588NPUCoreState, dma_mr, TYPE_MEMORY_REGION, MemoryRegion *),
};

static void npu_core_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    dc->realize = npu_core_realize;
    dc->vmsd = &vmstate_npu_core;
    dc->desc = "Rockchip RK3588 NPU core (rocketsim model)";
    dc->user_creatable = false;   /* created by rk3588-npu */
    rc->phases.hold = npu_core_reset_hold;
    device_class_set_props(dc, npu_core_properties);
}

static const TypeInfo npu_core_types[] = {
    {
        .name = TYPE_RK3588_NPU_CORE,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(RK3588NPUCoreState),
        .class_init = npu_core_class_init,
    },
};

DEFINE_TYPES(npu_core_types)
