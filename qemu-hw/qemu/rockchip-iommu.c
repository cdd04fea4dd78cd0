/*
 * Rockchip IOMMU v2 ("rockchip,rk3568-iommu", as on the RK3588 NPU): 10 registers per bank,
 * commands with synchronous status effects, a two-level page walk with 40-bit addresses, an IOTLB
 * flushed by the zap commands, and page faults reported through INT_RAWSTAT and the IRQ.
 * Translation runs on NPU worker threads, so it only ever reads guest RAM (never MMIO) and never
 * takes the BQL; the interrupt is raised from a bottom half.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "hw/irq.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/address-spaces.h"
#include "system/memory.h"
#include "rk3588-npu.h"
#include "trace.h"

enum {
    R_DTE_ADDR = 0x00, R_STATUS = 0x04, R_COMMAND = 0x08, R_PAGE_FAULT_ADDR = 0x0C,
    R_ZAP_ONE_LINE = 0x10, R_INT_RAWSTAT = 0x14, R_INT_CLEAR = 0x18, R_INT_MASK = 0x1C,
    R_INT_STATUS = 0x20, R_AUTO_GATING = 0x24,
};

enum {
    ST_PAGING_ENABLED = 1u << 0, ST_PAGE_FAULT_ACTIVE = 1u << 1, ST_STALL_ACTIVE = 1u << 2,
    ST_IDLE = 1u << 3, ST_PAGE_FAULT_IS_WRITE = 1u << 5,
};

enum {
    CMD_ENABLE_PAGING, CMD_DISABLE_PAGING, CMD_ENABLE_STALL, CMD_DISABLE_STALL, CMD_ZAP_CACHE,
    CMD_PAGE_FAULT_DONE, CMD_FORCE_RESET,
};

#define INT_PAGE_FAULT (1u << 0)
#define INT_BUS_ERROR (1u << 1)

/* v2 entry encoding: [31:12] PA[31:12], [11:8] PA[35:32], [7:4] PA[39:36] */
static uint64_t v2_addr(uint32_t e)
{
    return (e & 0xFFFFF000ull) | ((uint64_t)(e & 0xF00) << 24) | ((uint64_t)(e & 0xF0) << 32);
}

static uint32_t bank_status(const RockchipIOMMUBank *b)
{
    return (b->paging ? ST_PAGING_ENABLED : 0) | (b->fault_active ? ST_PAGE_FAULT_ACTIVE : 0) |
           (b->stall ? ST_STALL_ACTIVE : 0) | ST_IDLE |
           (b->fault_write ? ST_PAGE_FAULT_IS_WRITE : 0);
}

static void rkiommu_update_irq(RockchipIOMMUState *s)
{
    bool level = false;
    QEMU_LOCK_GUARD(&s->lock);
    for (uint32_t i = 0; i < s->num_banks; i++) {
        level |= (s->bank[i].int_rawstat & s->bank[i].int_mask) != 0;
    }
    qemu_set_irq(s->irq, level);
}

static void rkiommu_irq_bh(void *opaque)
{
    rkiommu_update_irq(opaque);
}

static void tlb_flush(RockchipIOMMUState *s)
{
    memset(s->tlb, 0, sizeof(s->tlb));
}

/* Read a page-table word from guest RAM; false if it is not RAM. Caller holds the RCU lock. */
static bool read_table(uint64_t pa, uint32_t *val)
{
    hwaddr xlat, len = 4;
    MemoryRegion *mr = address_space_translate(&address_space_memory, pa, &xlat, &len, false,
                                               MEMTXATTRS_UNSPECIFIED);
    if (len < 4 || !memory_access_is_direct(mr, false, MEMTXATTRS_UNSPECIFIED)) {
        return false;
    }
    *val = ldl_le_p(qemu_map_ram_ptr(mr->ram_block, xlat));
    return true;
}

/* Latch a fault in every bank that has paging on (they act as one); caller holds the lock. */
static void record_fault(RockchipIOMMUState *s, uint32_t iova, bool write, uint32_t bits,
                         const char *why)
{
    for (uint32_t i = 0; i < s->num_banks; i++) {
        RockchipIOMMUBank *b = &s->bank[i];
        if (!b->paging) {
            continue;
        }
        b->int_rawstat |= bits;
        b->page_fault_addr = iova;
        b->fault_active = true;
        b->fault_write = write;
    }
    trace_rockchip_iommu_fault(s->index, iova, write, why);
    qemu_bh_schedule(s->irq_bh);
}

static IOMMUTLBEntry rkiommu_translate(IOMMUMemoryRegion *mr, hwaddr addr,
                                       IOMMUAccessFlags flag, int iommu_idx)
{
    RockchipIOMMUState *s = container_of(mr, RockchipIOMMUState, iommu);
    uint32_t iova = (uint32_t)addr, page = iova >> 12, dte = 0, pte = 0, perm;
    RockchipIOMMUTLB *t = &s->tlb[page % ROCKCHIP_IOMMU_TLB_SIZE];
    IOMMUTLBEntry e = {
        .target_as = &address_space_memory, .iova = addr & ~0xFFFull, .addr_mask = 0xFFF,
        .perm = IOMMU_NONE,
    };
    bool write = flag & IOMMU_WO;

    QEMU_LOCK_GUARD(&s->lock);
    if (!s->bank[0].paging) {   /* paging off: the NPU sees physical addresses */
        e.translated_addr = addr & ~0xFFFull;
        e.perm = IOMMU_RW;
        return e;
    }
    if (t->perm && t->iova_page == page) {
        e.translated_addr = t->pa;
        e.perm = t->perm;
    } else {
        uint64_t dt = v2_addr(s->bank[0].dte_addr);
        RCU_READ_LOCK_GUARD();
        if (!read_table(dt + 4 * (iova >> 22), &dte) ||
            ((dte & 1) && !read_table(v2_addr(dte) + 4 * ((iova >> 12) & 0x3FF), &pte))) {
            record_fault(s, iova, write, INT_BUS_ERROR | INT_PAGE_FAULT, "table not in RAM");
            return e;
        }
        if (!(dte & 1) || !(pte & 1)) {
            if (flag != IOMMU_NONE) {
                record_fault(s, iova, write, INT_PAGE_FAULT, (dte & 1) ? "invalid PTE" : "invalid DTE");
            }
            return e;
        }
        perm = ((pte & 2) ? IOMMU_RO : 0) | ((pte & 4) ? IOMMU_WO : 0);
        e.translated_addr = v2_addr(pte);
        e.perm = perm;
        trace_rockchip_iommu_walk(s->index, iova, e.translated_addr, perm);
        if (perm) {
            t->iova_page = page;
            t->perm = perm;
            t->pa = e.translated_addr;
        }
    }
    if (flag & ~e.perm) {
        record_fault(s, iova, write, INT_PAGE_FAULT, "permission");
    }
    return e;
}

static void bank_command(RockchipIOMMUState *s, RockchipIOMMUBank *b, uint32_t cmd)
{
    switch (cmd) {
    case CMD_ENABLE_PAGING: b->paging = true; break;
    case CMD_DISABLE_PAGING: b->paging = false; break;
    case CMD_ENABLE_STALL: b->stall = true; break;
    case CMD_DISABLE_STALL: b->stall = false; break;
    case CMD_ZAP_CACHE: tlb_flush(s); break;
    case CMD_PAGE_FAULT_DONE: b->fault_active = b->fault_write = false; break;
    case CMD_FORCE_RESET:
        memset(b, 0, sizeof(*b));
        tlb_flush(s);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "rockchip-iommu%u: unknown command %u\n", s->index, cmd);
        break;
    }
}

static uint64_t rkiommu_read(void *opaque, hwaddr addr, unsigned size, uint32_t bank)
{
    RockchipIOMMUState *s = opaque;
    RockchipIOMMUBank *b = &s->bank[bank];
    uint32_t v = 0;
    qemu_mutex_lock(&s->lock);
    switch (addr) {
    case R_DTE_ADDR: v = b->dte_addr; break;
    case R_STATUS: v = bank_status(b); break;
    case R_PAGE_FAULT_ADDR: v = b->page_fault_addr; break;
    case R_INT_RAWSTAT: v = b->int_rawstat; break;
    case R_INT_MASK: v = b->int_mask; break;
    case R_INT_STATUS: v = b->int_rawstat & b->int_mask; break;
    case R_AUTO_GATING: v = b->auto_gating; break;
    case R_COMMAND: case R_ZAP_ONE_LINE: case R_INT_CLEAR: break;   /* write-only */
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "rockchip-iommu%u: read of bad offset 0x%" HWADDR_PRIx
                      "\n", s->index, addr);
        break;
    }
    qemu_mutex_unlock(&s->lock);
    trace_rockchip_iommu_read(s->index, bank, addr, v);
    return v;
}

static void rkiommu_write(void *opaque, hwaddr addr, uint64_t val64, unsigned size,
                          uint32_t bank)
{
    RockchipIOMMUState *s = opaque;
    RockchipIOMMUBank *b = &s->bank[bank];
    uint32_t val = val64;
    trace_rockchip_iommu_write(s->index, bank, addr, val);
    qemu_mutex_lock(&s->lock);
    switch (addr) {
    case R_DTE_ADDR: b->dte_addr = val & ~0xFu; break;
    case R_COMMAND: bank_command(s, b, val & 7); break;
    case R_ZAP_ONE_LINE: {
        RockchipIOMMUTLB *t = &s->tlb[(val >> 12) % ROCKCHIP_IOMMU_TLB_SIZE];
        if (t->iova_page == val >> 12) {
            t->perm = 0;
        }
        break;
    }
    case R_INT_CLEAR: b->int_rawstat &= ~val; break;
    case R_INT_MASK: b->int_mask = val & 3; break;
    case R_AUTO_GATING: b->auto_gating = val; break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "rockchip-iommu%u: write 0x%x to read-only/bad offset 0x%"
                      HWADDR_PRIx "\n", s->index, val, addr);
        break;
    }
    qemu_mutex_unlock(&s->lock);
    rkiommu_update_irq(s);
}

#define BANK_OPS(n)                                                                         \
    static uint64_t rkiommu_read##n(void *o, hwaddr a, unsigned sz)                          \
    { return rkiommu_read(o, a, sz, n); }                                                   \
    static void rkiommu_write##n(void *o, hwaddr a, uint64_t v, unsigned sz)                 \
    { rkiommu_write(o, a, v, sz, n); }                                                      \
    static const MemoryRegionOps rkiommu_ops##n = {                                          \
        .read = rkiommu_read##n, .write = rkiommu_write##n,                                  \
        .endianness = DEVICE_LITTLE_ENDIAN,                                                 \
        .valid = { .min_access_size = 4, .max_access_size = 4 },                            \
    };
BANK_OPS(0)
BANK_OPS(1)

static void rkiommu_reset_hold(Object *obj, ResetType type)
{
    RockchipIOMMUState *s = ROCKCHIP_IOMMU(obj);
    qemu_mutex_lock(&s->lock);
    memset(s->bank, 0, sizeof(s->bank));
    tlb_flush(s);
    qemu_mutex_unlock(&s->lock);
    qemu_set_irq(s->irq, 0);
}

static void rkiommu_realize(DeviceState *dev, Error **errp)
{
    RockchipIOMMUState *s = ROCKCHIP_IOMMU(dev);
    static const MemoryRegionOps *const ops[] = { &rkiommu_ops0, &rkiommu_ops1 };
    if (s->num_banks < 1 || s->num_banks > ROCKCHIP_IOMMU_MAX_BANKS) {
        error_setg(errp, "rockchip-iommu: num-banks must be 1 or 2");
        return;
    }
    qemu_mutex_init(&s->lock);
    for (uint32_t i = 0; i < s->num_banks; i++) {
        memory_region_init_io(&s->bank_mmio[i], OBJECT(s), ops[i], s, "rockchip-iommu-bank",
                              0x100);
        sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->bank_mmio[i]);
    }
    memory_region_init_iommu(&s->iommu, sizeof(s->iommu), TYPE_ROCKCHIP_IOMMU_MEMORY_REGION,
                             OBJECT(s), "rockchip-iommu", 1ull << 32);
    sysbus_init_irq(SYS_BUS_DEVICE(s), &s->irq);
    s->irq_bh = qemu_bh_new(rkiommu_irq_bh, s);
}

static int rkiommu_post_load(void *opaque, int version_id)
{
    tlb_flush(opaque);
    return 0;
}

static const VMStateDescription vmstate_rkiommu_bank = {
    .name = "rockchip-iommu-bank",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(dte_addr, RockchipIOMMUBank),
        VMSTATE_UINT32(int_rawstat, RockchipIOMMUBank),
        VMSTATE_UINT32(int_mask, RockchipIOMMUBank),
        VMSTATE_UINT32(page_fault_addr, RockchipIOMMUBank),
        VMSTATE_UINT32(auto_gating, RockchipIOMMUBank),
        VMSTATE_BOOL(paging, RockchipIOMMUBank),
        VMSTATE_BOOL(stall, RockchipIOMMUBank),
        VMSTATE_BOOL(fault_active, RockchipIOMMUBank),
        VMSTATE_BOOL(fault_write, RockchipIOMMUBank),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_rkiommu = {
    .name = TYPE_ROCKCHIP_IOMMU,
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = rkiommu_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(bank, RockchipIOMMUState, ROCKCHIP_IOMMU_MAX_BANKS, 1,
                             vmstate_rkiommu_bank, RockchipIOMMUBank),
        VMSTATE_END_OF_LIST()
    },
};

static const Property rkiommu_properties[] = {
    DEFINE_PROP_UINT32("num-banks", RockchipIOMMUState, num_banks, 1),
    DEFINE_PROP_UINT32("index", RockchipIOMMUState, index, 0),
};

static void rkiommu_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    dc->realize = rkiommu_realize;
    dc->vmsd = &vmstate_rkiommu;
    dc->desc = "Rockchip IOMMU v2 (RK3588 NPU)";
    rc->phases.hold = rkiommu_reset_hold;
    device_class_set_props(dc, rkiommu_properties);
}

static void rkiommu_mr_class_init(ObjectClass *klass, const void *data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);
    imrc->translate = rkiommu_translate;
}

static const TypeInfo rkiommu_types[] = {
    {
        .name = TYPE_ROCKCHIP_IOMMU,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(RockchipIOMMUState),
        .class_init = rkiommu_class_init,
    },
    {
        .name = TYPE_ROCKCHIP_IOMMU_MEMORY_REGION,
        .parent = TYPE_IOMMU_MEMORY_REGION,
        .class_init = rkiommu_mr_class_init,
    },
};

DEFINE_TYPES(rkiommu_types)
