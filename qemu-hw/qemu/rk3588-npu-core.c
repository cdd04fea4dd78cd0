/*
 * One RK3588 NPU core: the rocketsim core model (qemu-hw/core) behind a 64 KiB MMIO window.
 *
 * A kick copies the register file to a worker thread, which fetches regcmds and computes through
 * the core's IOMMU while the vCPUs run on. The interrupt is raised on QEMU_CLOCK_VIRTUAL at the
 * cycle model's completion time, and never before the arithmetic is done. Under -icount a guard
 * timer keeps virtual time from warping past the kick (to the driver's 500 ms timeout, say) while
 * the worker computes. Worker DMA touches guest RAM only, so the worker never needs the BQL.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
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

static void npu_log(void *opaque, enum rn_log_kind kind, const char *msg)
{
    RK3588NPUCoreState *s = opaque;
    qemu_log_mask(kind == RN_LOG_UNIMP ? LOG_UNIMP : LOG_GUEST_ERROR, "rk3588-npu%u: %s\n",
                  s->index, msg);
}

static void npu_on_task(void *opaque, const struct rn_task_stats *st)
{
    RK3588NPUCoreState *s = opaque;
    trace_rk3588_npu_task(s->index, st->kick_task, st->regcmd_iova, st->op_en, st->macs,
                          st->bytes_read, st->bytes_written, st->cycles, st->error);
}

/* NPU DMA through the IOMMU, RAM only: anything else is a fault for the core (error bits). */
static int npu_dma(RK3588NPUCoreState *s, uint32_t iova, uint8_t *buf, size_t len, bool write)
{
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    uint64_t a = iova;
    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr;
        uint8_t *ram;
        if (a >= (1ull << 32)) {
            return -1;
        }
        mr = address_space_translate(&s->dma_as, a, &xlat, &l, write, attrs);
        if (!l || !memory_access_is_direct(mr, write, attrs)) {
            return -1;
        }
        ram = qemu_map_ram_ptr(mr->ram_block, xlat);
        if (write) {
            memcpy(ram, buf, l);
            memory_region_set_dirty(mr, xlat, l);
        } else {
            memcpy(buf, ram, l);
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
    struct rn_mem mem = { s, npu_dma_read, npu_dma_write };
    qemu_mutex_lock(&s->lock);
    while (!s->quit) {
        struct rn_kick_result res;
        uint32_t gen;
        if (!s->job_pending) {
            qemu_cond_wait(&s->cond, &s->lock);
            continue;
        }
        s->job_pending = false;
        gen = s->job_gen;
        qemu_mutex_unlock(&s->lock);
        rn_core_run(s->work, &mem, &res);
        qemu_mutex_lock(&s->lock);
        s->result = res;
        s->done_gen = gen;
        s->job_done = true;
        qemu_cond_broadcast(&s->cond);
        qemu_bh_schedule(s->done_bh);
    }
    qemu_mutex_unlock(&s->lock);
    return NULL;
}

/* Block until the worker has finished every job handed to it (cancelled ones included). */
static void npu_wait_worker(RK3588NPUCoreState *s)
{
    qemu_mutex_lock(&s->lock);
    while (s->job_pending || s->done_gen != s->job_gen) {
        qemu_cond_wait(&s->cond, &s->lock);
    }
    qemu_mutex_unlock(&s->lock);
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

/* Take the worker's result, if it belongs to the kick in flight. */
static void npu_collect(RK3588NPUCoreState *s)
{
    bool mine;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    qemu_mutex_lock(&s->lock);
    mine = s->job_done && s->done_gen == s->job_gen;
    if (mine) {
        s->job_done = false;
    }
    qemu_mutex_unlock(&s->lock);
    if (!mine || s->phase != NPU_COMPUTING) {
        return;
    }
    rn_core_adopt(&s->core, s->work);
    if (s->result.hang) {
        s->phase = NPU_HUNG;
        timer_del(s->timer);
        trace_rk3588_npu_hang(s->index);
        return;
    }
    s->deadline_ns = s->kick_ns + rn_cycles_to_ns(&s->core.timing, s->result.cycles);
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

static void npu_timer(void *opaque)
{
    RK3588NPUCoreState *s = opaque;
    if (s->phase == NPU_COMPUTING) {   /* -icount guard: time stands until the result is in */
        qemu_mutex_lock(&s->lock);
        while (!(s->job_done && s->done_gen == s->job_gen)) {
            qemu_cond_wait(&s->cond, &s->lock);
        }
        qemu_mutex_unlock(&s->lock);
        npu_collect(s);
    } else if (s->phase == NPU_WAITING) {
        npu_complete(s);
    }
}

static void npu_start_kick(RK3588NPUCoreState *s)
{
    struct rn_core *w = s->work;
    npu_wait_worker(s);   /* a cancelled kick may still be finishing */
    memcpy(w->regs, s->core.regs, sizeof(w->regs));
    w->executer = s->core.executer;
    w->task_count = 0;
    w->timing = s->core.timing;
    w->cancel = 0;
    s->kick_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->phase = NPU_COMPUTING;
    trace_rk3588_npu_kick(s->index, rn_core_read(&s->core, RN_PC_BASE_ADDRESS),
                          rn_core_read(&s->core, RN_PC_TASK_CON), s->kick_ns);
    qemu_mutex_lock(&s->lock);
    s->job_gen++;
    s->job_pending = true;
    s->job_done = false;
    qemu_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
    if (icount_enabled()) {
        timer_mod(s->timer, s->kick_ns + ICOUNT_GUARD_NS);
    }
}

/* srst_a/srst_h, or a system reset: abandon any kick and return to reset values. */
static void npu_hw_reset(RK3588NPUCoreState *s)
{
    timer_del(s->timer);
    if (s->phase == NPU_COMPUTING) {
        rn_core_cancel(s->work);
        trace_rk3588_npu_abort(s->index);
    }
    s->phase = NPU_IDLE;
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

/* Before the VM stops or is saved, let any kick finish its arithmetic and memory writes. */
static void npu_drain(RK3588NPUCoreState *s)
{
    if (s->phase == NPU_COMPUTING) {
        npu_wait_worker(s);
        npu_collect(s);
    }
}

static void npu_vm_state_change(void *opaque, bool running, RunState state)
{
    if (!running) {
        npu_drain(opaque);
    }
}

static int npu_pre_save(void *opaque)
{
    npu_drain(opaque);
    return 0;
}

static int npu_post_load(void *opaque, int version_id)
{
    RK3588NPUCoreState *s = opaque;
    if (s->phase == NPU_COMPUTING) {   /* never saved so; treat a corrupt stream kindly */
        s->phase = NPU_IDLE;
        s->core.kicked = false;
    }
    npu_update_irq(s);
    return 0;
}

static const VMStateDescription vmstate_npu_core = {
    .name = TYPE_RK3588_NPU_CORE,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = npu_pre_save,
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
};

static void npu_core_realize(DeviceState *dev, Error **errp)
{
    RK3588NPUCoreState *s = RK3588_NPU_CORE(dev);
    if (!s->dma_mr) {
        error_setg(errp, "rk3588-npu-core: 'dma-mr' (the IOMMU region) is not set");
        return;
    }
    if (!s->clock_hz) {
        error_setg(errp, "rk3588-npu-core: clock-frequency must not be 0");
        return;
    }
    address_space_init(&s->dma_as, s->dma_mr, "rk3588-npu-dma");
    memory_region_init_io(&s->mmio, OBJECT(s), &npu_ops, s, "rk3588-npu", RN_WINDOW_SIZE);
    sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->mmio);
    sysbus_init_irq(SYS_BUS_DEVICE(s), &s->irq);
    qdev_init_gpio_in(dev, npu_reset_line, 2);   /* srst_a, srst_h */

    rn_core_init(&s->core);
    s->core.log = npu_log;
    s->core.log_opaque = s;
    s->core.timing.clock_hz = s->clock_hz;
    s->core.timing.dma_bytes_per_sec = s->dma_bytes_per_sec;
    s->core.timing.dma_bytes_per_cycle = s->dma_bytes_per_cycle;
    s->core.timing.task_overhead_cycles = s->task_overhead;
    s->work = g_new0(struct rn_core, 1);
    rn_core_init(s->work);
    s->work->log = npu_log;
    s->work->log_opaque = s;
    s->work->on_task = npu_on_task;
    s->work->task_opaque = s;

    s->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, npu_timer, s);
    s->done_bh = qemu_bh_new(npu_done_bh, s);
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->cond);
    qemu_thread_create(&s->thread, "rk3588-npu", npu_worker, s, QEMU_THREAD_JOINABLE);
    qemu_add_vm_change_state_handler(npu_vm_state_change, s);
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
