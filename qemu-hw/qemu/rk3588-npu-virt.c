/*
 * rk3588-npu: `-M virt -device rk3588-npu[,cores=N]` builds the RK3588 NPU the upstream Linux
 * drivers expect: N NPU cores, a Rockchip IOMMU v2 per core (core 0 with two banks, as on the
 * SoC), and a reset controller for the cores' srst_a/srst_h lines, with device-tree nodes to the
 * upstream bindings. SoC addresses would land in virt's RAM, so everything sits in virt's free
 * MMIO window after the virtio-mmio slots, on SPIs above the platform bus's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/module.h"
#include "hw/arm/fdt.h"
#include "hw/arm/virt.h"
#include "hw/qdev-properties.h"
#include "system/device_tree.h"
#include "system/address-spaces.h"
#include "rk3588-npu.h"

#define CORE_STRIDE 0x10000     /* a 64 KiB block per core, as on the SoC */
#define IOMMU_BANK0 0x9000      /* core 0: banks at +0x9000 and +0xa000; cores 1, 2: +0xa000 */
#define IOMMU_BANK1 0xa000
#define RESET_OFFSET 0x30000
#define NPU_SPAN 0x40000        /* cores, IOMMUs and the reset controller */

/*
 * Refuse a base that would put the NPU over something of virt's: its fixed low memory map
 * (flash, GIC, UARTs, virtio-mmio, platform bus, PCIe windows) and RAM with everything virt
 * floats above RAM. Returns false with @errp set.
 */
static bool npu_check_base(RK3588NPUState *s, VirtMachineState *vms, Error **errp)
{
    hwaddr ram = vms->memmap[VIRT_MEM].base;
    if (s->base & (CORE_STRIDE - 1)) {
        error_setg(errp, "rk3588-npu: base 0x%" PRIx64 " is not 64 KiB aligned", s->base);
        return false;
    }
    if (s->base >= ram || ram - s->base < NPU_SPAN) {
        error_setg(errp, "rk3588-npu: base 0x%" PRIx64 " must leave 0x%x bytes below RAM "
                   "(0x%" HWADDR_PRIx "); the free window after the virtio-mmio slots is the "
                   "default", s->base, NPU_SPAN, ram);
        return false;
    }
    for (int i = 0; i < VIRT_LOWMEMMAP_LAST; i++) {
        hwaddr b = vms->memmap[i].base, size = vms->memmap[i].size;
        if (i == VIRT_MMIO) {
            size *= NUM_VIRTIO_TRANSPORTS;
        }
        if (i != VIRT_MEM && size && s->base < b + size && b < s->base + NPU_SPAN) {
            error_setg(errp, "rk3588-npu: base 0x%" PRIx64 " overlaps virt's region at "
                       "0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx, s->base, b, b + size - 1);
            return false;
        }
    }
    return true;
}

/* The NPU's SPIs must not share a line with one of virt's devices. */
static bool npu_check_spis(RK3588NPUState *s, VirtMachineState *vms, Error **errp)
{
    const struct { int region; uint32_t count; bool used; } taken[] = {
        { VIRT_MMIO, NUM_VIRTIO_TRANSPORTS, true },
        { VIRT_GIC_V2M, NUM_GICV2M_SPIS, vms->msi_controller == VIRT_MSI_CTRL_GICV2M },
        { VIRT_SMMU, NUM_SMMU_IRQS, vms->iommu == VIRT_IOMMU_SMMUV3 },
        { VIRT_PLATFORM_BUS, 64 /* virt.c's PLATFORM_BUS_NUM_IRQS */, true },
    };
    uint64_t first = s->spi_base, end = first + 2ull * s->num_cores;
    if (first < 32 || end > 256) {   /* below 32: virt's fixed devices; 256: its GIC's SPIs */
        error_setg(errp, "rk3588-npu: spi-base %u leaves virt's SPI range", s->spi_base);
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(taken); i++) {
        uint64_t b = vms->irqmap[taken[i].region];
        if (taken[i].used && first < b + taken[i].count && b < end) {
            error_setg(errp, "rk3588-npu: SPIs %" PRIu64 "-%" PRIu64 " overlap virt's SPIs "
                       "%" PRIu64 "-%" PRIu64, first, end - 1, b, b + taken[i].count - 1);
            return false;
        }
    }
    return true;
}

static hwaddr core_base(RK3588NPUState *s, int i)
{
    return s->base + (hwaddr)i * CORE_STRIDE;
}

static void fdt_irq(void *fdt, const char *node, uint32_t spi)
{
    qemu_fdt_setprop_cells(fdt, node, "interrupts", GIC_FDT_IRQ_TYPE_SPI, spi,
                           GIC_FDT_IRQ_FLAGS_LEVEL_HI);
}

static uint32_t fdt_reset_controller(RK3588NPUState *s, void *fdt)
{
    hwaddr base = s->base + RESET_OFFSET;
    g_autofree char *node = g_strdup_printf("/reset-controller@%" HWADDR_PRIx, base);
    uint32_t ph = qemu_fdt_alloc_phandle(fdt);
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop_string(fdt, node, "compatible", "snps,dw-high-reset");
    qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, base, 2, 4);
    qemu_fdt_setprop_cell(fdt, node, "#reset-cells", 1);
    qemu_fdt_setprop_cell(fdt, node, "phandle", ph);
    return ph;
}

static uint32_t fdt_iommu(RK3588NPUState *s, void *fdt, int i, uint32_t clk)
{
    static const char compat[] = "rockchip,rk3588-iommu\0rockchip,rk3568-iommu";
    static const char clk_names[] = "aclk\0iface";
    hwaddr b0 = core_base(s, i) + (i == 0 ? IOMMU_BANK0 : IOMMU_BANK1);
    g_autofree char *node = g_strdup_printf("/iommu@%" HWADDR_PRIx, b0);
    uint32_t ph = qemu_fdt_alloc_phandle(fdt);
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop(fdt, node, "compatible", compat, sizeof(compat));
    if (i == 0) {
        qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, b0, 2, 0x100,
                                     2, core_base(s, i) + IOMMU_BANK1, 2, 0x100);
    } else {
        qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, b0, 2, 0x100);
    }
    fdt_irq(fdt, node, s->spi_base + s->num_cores + i);
    qemu_fdt_setprop_cells(fdt, node, "clocks", clk, clk);
    qemu_fdt_setprop(fdt, node, "clock-names", clk_names, sizeof(clk_names));
    qemu_fdt_setprop_cell(fdt, node, "#iommu-cells", 0);
    qemu_fdt_setprop_cell(fdt, node, "phandle", ph);
    return ph;
}

static void fdt_core(RK3588NPUState *s, void *fdt, int i, uint32_t clk, uint32_t rst,
                     uint32_t iommu)
{
    static const char reg_names[] = "pc\0cna\0core";
    static const char clk_names[] = "aclk\0hclk\0npu\0pclk";
    static const char rst_names[] = "srst_a\0srst_h";
    hwaddr b = core_base(s, i);
    g_autofree char *node = g_strdup_printf("/npu@%" HWADDR_PRIx, b);
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop_string(fdt, node, "compatible", "rockchip,rk3588-rknn-core");
    qemu_fdt_setprop_sized_cells(fdt, node, "reg", 2, b, 2, 0x1000, 2, b + 0x1000, 2, 0x1000,
                                 2, b + 0x3000, 2, 0x1000);
    qemu_fdt_setprop(fdt, node, "reg-names", reg_names, sizeof(reg_names));
    fdt_irq(fdt, node, s->spi_base + i);
    qemu_fdt_setprop_cells(fdt, node, "clocks", clk, clk, clk, clk);
    qemu_fdt_setprop(fdt, node, "clock-names", clk_names, sizeof(clk_names));
    qemu_fdt_setprop_cells(fdt, node, "resets", rst, 2 * i, rst, 2 * i + 1);
    qemu_fdt_setprop(fdt, node, "reset-names", rst_names, sizeof(rst_names));
    qemu_fdt_setprop_cell(fdt, node, "iommus", iommu);
}

static void npu_realize(DeviceState *dev, Error **errp)
{
    RK3588NPUState *s = RK3588_NPU(dev);
    Object *m = qdev_get_machine();
    VirtMachineState *vms = (VirtMachineState *)object_dynamic_cast(m, TYPE_VIRT_MACHINE);
    void *fdt = MACHINE(m)->fdt;
    SysBusDevice *rsb;
    Object *parts;
    uint32_t rst_ph, quirks;
    char err[200];

    if (!vms) {
        error_setg(errp, "rk3588-npu: only the 'virt' machine is supported (use -M virt)");
        return;
    }
    if (s->quirks && rn_quirks_parse(s->quirks, &quirks, err, sizeof(err))) {
        error_setg(errp, "rk3588-npu: quirks: %s", err);
        return;
    }
    if (s->threads > RN_MAX_THREADS) {
        error_setg(errp, "rk3588-npu: threads must be 0 (as the host allows) to %d",
                   RN_MAX_THREADS);
        return;
    }
    if (s->num_cores < 1 || s->num_cores > RK3588_NPU_MAX_CORES) {
        error_setg(errp, "rk3588-npu: cores must be 1..%d (the RK3588 has 3)",
                   RK3588_NPU_MAX_CORES);
        return;
    }
    if (!s->clock_hz) {
        error_setg(errp, "rk3588-npu: clock-frequency must not be 0");
        return;
    }
    if (!npu_check_spis(s, vms, errp)) {
        return;
    }
    if (object_resolve_path_component(m, "rk3588-npu")) {
        error_setg(errp, "rk3588-npu: only one per machine");
        return;
    }
    if (!npu_check_base(s, vms, errp)) {
        return;
    }
    if (!fdt) {
        error_setg(errp, "rk3588-npu: the machine has no device tree to describe the NPU in");
        return;
    }

    /*
     * The parts hang under /machine/rk3588-npu, not under this device: sysbus devices found
     * below -device containers are taken for platform-bus devices by virt.
     */
    parts = object_property_add_new_container(m, "rk3588-npu");
    s->reset = DW_HIGH_RESET(qdev_new(TYPE_DW_HIGH_RESET));
    rsb = SYS_BUS_DEVICE(s->reset);
    object_property_add_child(parts, "reset", OBJECT(rsb));
    sysbus_realize_and_unref(rsb, &error_fatal);
    sysbus_mmio_map(rsb, 0, s->base + RESET_OFFSET);
    rst_ph = fdt_reset_controller(s, fdt);

    for (uint32_t i = 0; i < s->num_cores; i++) {
        DeviceState *mmu = qdev_new(TYPE_ROCKCHIP_IOMMU), *core = qdev_new(TYPE_RK3588_NPU_CORE);
        g_autofree char *mmu_name = g_strdup_printf("iommu[%u]", i);
        g_autofree char *core_name = g_strdup_printf("core[%u]", i);
        uint32_t mmu_ph;

        s->iommus[i] = ROCKCHIP_IOMMU(mmu);
        qdev_prop_set_uint32(mmu, "num-banks", i == 0 ? 2 : 1);
        qdev_prop_set_uint32(mmu, "index", i);
        object_property_add_child(parts, mmu_name, OBJECT(mmu));
        sysbus_realize_and_unref(SYS_BUS_DEVICE(mmu), &error_fatal);
        sysbus_mmio_map_overlap(SYS_BUS_DEVICE(mmu), 0,
                                core_base(s, i) + (i == 0 ? IOMMU_BANK0 : IOMMU_BANK1), 1);
        if (i == 0) {
            sysbus_mmio_map_overlap(SYS_BUS_DEVICE(mmu), 1, core_base(s, i) + IOMMU_BANK1, 1);
        }
        sysbus_connect_irq(SYS_BUS_DEVICE(mmu), 0,
                           qdev_get_gpio_in(vms->gic, s->spi_base + s->num_cores + i));

        s->cores[i] = RK3588_NPU_CORE(core);
        qdev_prop_set_uint32(core, "index", i);
        qdev_prop_set_uint64(core, "clock-frequency", s->clock_hz);
        qdev_prop_set_uint64(core, "dma-bandwidth", s->dma_bytes_per_sec);
        qdev_prop_set_uint32(core, "dma-bytes-per-cycle", s->dma_bytes_per_cycle);
        qdev_prop_set_uint32(core, "task-overhead", s->task_overhead);
        qdev_prop_set_uint32(core, "threads", s->threads);
        if (s->quirks) {
            qdev_prop_set_string(core, "quirks", s->quirks);
        }
        object_property_set_link(OBJECT(core), "dma-mr",
                                 OBJECT(&s->iommus[i]->iommu), &error_fatal);
        object_property_add_child(parts, core_name, OBJECT(core));
        sysbus_realize_and_unref(SYS_BUS_DEVICE(core), &error_fatal);
        sysbus_mmio_map_overlap(SYS_BUS_DEVICE(core), 0, core_base(s, i), 0);
        sysbus_connect_irq(SYS_BUS_DEVICE(core), 0,
                           qdev_get_gpio_in(vms->gic, s->spi_base + i));
        qdev_connect_gpio_out(DEVICE(s->reset), 2 * i, qdev_get_gpio_in(core, 0));
        qdev_connect_gpio_out(DEVICE(s->reset), 2 * i + 1, qdev_get_gpio_in(core, 1));

        mmu_ph = fdt_iommu(s, fdt, i, vms->clock_phandle);
        fdt_core(s, fdt, i, vms->clock_phandle, rst_ph, mmu_ph);
    }
}

static const Property npu_properties[] = {
    DEFINE_PROP_UINT32("cores", RK3588NPUState, num_cores, 3),
    DEFINE_PROP_UINT64("clock-frequency", RK3588NPUState, clock_hz, 200000000),
    DEFINE_PROP_UINT64("dma-bandwidth", RK3588NPUState, dma_bytes_per_sec, 17000000000),
    DEFINE_PROP_UINT32("dma-bytes-per-cycle", RK3588NPUState, dma_bytes_per_cycle, 20),
    DEFINE_PROP_UINT32("task-overhead", RK3588NPUState, task_overhead, 2000),
    DEFINE_PROP_STRING("quirks", RK3588NPUState, quirks),
    DEFINE_PROP_UINT32("threads", RK3588NPUState, threads, 0),
    DEFINE_PROP_UINT64("base", RK3588NPUState, base, 0x0a100000),
    DEFINE_PROP_UINT32("spi-base", RK3588NPUState, spi_base, 176),
};

static void npu_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    dc->realize = npu_realize;
    dc->desc = "Rockchip RK3588 NPU (rocketsim): cores, IOMMUs, reset controller, DT nodes";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    dc->hotpluggable = false;   /* its parts are wired into virt's GIC and device tree */
    device_class_set_props(dc, npu_properties);
}

static const TypeInfo npu_types[] = {
    {
        .name = TYPE_RK3588_NPU,
        .parent = TYPE_DEVICE,
        .instance_size = sizeof(RK3588NPUState),
        .class_init = npu_class_init,
    },
};

DEFINE_TYPES(npu_types)
