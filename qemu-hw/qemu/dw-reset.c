/*
 * "snps,dw-high-reset" reset controller as Linux's reset-simple drives it: one 32-bit read/write
 * register, bit n set = reset line n asserted, power-on value 0. Each bit drives a GPIO output.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "hw/irq.h"
#include "migration/vmstate.h"
#include "rk3588-npu.h"
#include "trace.h"

static void dwreset_apply(DWHighResetState *s)
{
    for (int i = 0; i < 32; i++) {
        qemu_set_irq(s->lines[i], (s->value >> i) & 1);
    }
}

static uint64_t dwreset_read(void *opaque, hwaddr addr, unsigned size)
{
    DWHighResetState *s = opaque;
    if (addr != 0) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-high-reset: read of bad offset 0x%" HWADDR_PRIx "\n",
                      addr);
        return 0;
    }
    return s->value;
}

static void dwreset_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    DWHighResetState *s = opaque;
    if (addr != 0) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-high-reset: write to bad offset 0x%" HWADDR_PRIx "\n",
                      addr);
        return;
    }
    trace_dw_reset_write(s->value, (uint32_t)val);
    s->value = val;
    dwreset_apply(s);
}

static const MemoryRegionOps dwreset_ops = {
    .read = dwreset_read,
    .write = dwreset_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
};

static void dwreset_reset_hold(Object *obj, ResetType type)
{
    DWHighResetState *s = DW_HIGH_RESET(obj);
    s->value = 0;
    dwreset_apply(s);
}

static void dwreset_init(Object *obj)
{
    DWHighResetState *s = DW_HIGH_RESET(obj);
    memory_region_init_io(&s->mmio, obj, &dwreset_ops, s, "dw-high-reset", 0x1000);
    sysbus_init_mmio(SYS_BUS_DEVICE(obj), &s->mmio);
    qdev_init_gpio_out(DEVICE(obj), s->lines, 32);
}

static const VMStateDescription vmstate_dwreset = {
    .name = TYPE_DW_HIGH_RESET,
    .version_id = 1,
    .minimum_version_id = 1,
    /* no post_load: the cores save whether they are held in reset themselves */
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(value, DWHighResetState),
        VMSTATE_END_OF_LIST()
    },
};

static void dwreset_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    dc->vmsd = &vmstate_dwreset;
    dc->desc = "Synopsys DesignWare reset controller (active high)";
    rc->phases.hold = dwreset_reset_hold;
}

static const TypeInfo dwreset_types[] = {
    {
        .name = TYPE_DW_HIGH_RESET,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(DWHighResetState),
        .instance_init = dwreset_init,
        .class_init = dwreset_class_init,
    },
};

DEFINE_TYPES(dwreset_types)
