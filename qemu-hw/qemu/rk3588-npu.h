/*
 * Rockchip RK3588 NPU on QEMU: the NPU core device, its Rockchip IOMMU v2 and the reset
 * controller, and the rk3588-npu container that puts them on -M virt.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_ROCKETSIM_RK3588_NPU_H
#define HW_ROCKETSIM_RK3588_NPU_H

#include "hw/sysbus.h"
#include "qemu/thread.h"
#include "qom/object.h"
#include "core/quirks.h"
#include "core/rknpu.h"

#define RK3588_NPU_MAX_CORES 3

/* ---- rockchip-iommu: one per NPU core, 1 or 2 register banks that act as one ---- */

#define TYPE_ROCKCHIP_IOMMU "rockchip-iommu"
#define TYPE_ROCKCHIP_IOMMU_MEMORY_REGION "rockchip-iommu-memory-region"
OBJECT_DECLARE_SIMPLE_TYPE(RockchipIOMMUState, ROCKCHIP_IOMMU)

#define ROCKCHIP_IOMMU_MAX_BANKS 2
#define ROCKCHIP_IOMMU_TLB_SIZE 64

typedef struct RockchipIOMMUBank {
    uint32_t dte_addr;       /* as written, bits [31:4] */
    uint32_t int_rawstat;
    uint32_t int_mask;
    uint32_t page_fault_addr;
    uint32_t auto_gating;
    bool paging;
    bool stall;
    bool fault_active;
    bool fault_write;
} RockchipIOMMUBank;

typedef struct RockchipIOMMUTLB {
    uint32_t iova_page;      /* IOVA >> 12, valid when perm != 0 */
    uint32_t perm;           /* IOMMU_RO / IOMMU_WO bits */
    uint64_t pa;
} RockchipIOMMUTLB;

struct RockchipIOMMUState {
    SysBusDevice parent_obj;
    MemoryRegion bank_mmio[ROCKCHIP_IOMMU_MAX_BANKS];
    IOMMUMemoryRegion iommu;
    qemu_irq irq;
    QEMUBH *irq_bh;          /* faults are found on NPU worker threads */
    QemuMutex lock;          /* banks and TLB: MMIO (BQL) vs. translation (workers) */
    uint32_t num_banks;
    uint32_t index;
    RockchipIOMMUBank bank[ROCKCHIP_IOMMU_MAX_BANKS];
    RockchipIOMMUTLB tlb[ROCKCHIP_IOMMU_TLB_SIZE];
};

/* ---- snps,dw-high-reset: one 32-bit register, bit n asserts reset line n ---- */

#define TYPE_DW_HIGH_RESET "snps-dw-high-reset"
OBJECT_DECLARE_SIMPLE_TYPE(DWHighResetState, DW_HIGH_RESET)

struct DWHighResetState {
    SysBusDevice parent_obj;
    MemoryRegion mmio;
    qemu_irq lines[32];
    uint32_t value;
};

/* ---- rk3588-npu-core: one NPU core running the rocketsim core model ---- */

#define TYPE_RK3588_NPU_CORE "rk3588-npu-core"
OBJECT_DECLARE_SIMPLE_TYPE(RK3588NPUCoreState, RK3588_NPU_CORE)

typedef enum RK3588NPUPhase {
    NPU_IDLE,        /* no kick in flight */
    NPU_COMPUTING,   /* the worker thread runs the kick */
    NPU_WAITING,     /* arithmetic done, completion due at deadline_ns */
    NPU_HUNG,        /* modelled hang: nothing until reset */
} RK3588NPUPhase;

struct RK3588NPUCoreState {
    SysBusDevice parent_obj;
    MemoryRegion mmio;
    qemu_irq irq;
    MemoryRegion *dma_mr;    /* the IOMMU region every NPU DMA goes through */
    AddressSpace dma_as;
    uint32_t index;
    uint64_t clock_hz;
    uint64_t dma_bytes_per_sec;
    uint32_t dma_bytes_per_cycle;
    uint32_t task_overhead;
    char *quirks;            /* quirks= (HARDWARE-UNKNOWNS Q15) */
    uint32_t threads;        /* host threads per task; 0: rn_threads_auto() */

    struct rn_core core;     /* the registers the CPU sees */
    struct rn_core *work;    /* private copy the worker computes on */
    struct rn_kick_result result;   /* of the kick in flight, once collected */
    uint32_t phase;          /* RK3588NPUPhase */
    /* the kick in flight as the CPU programmed it: what the worker runs, or runs again */
    uint32_t kick_regs[RN_WORDS];
    uint32_t kick_executer;
    int16_t kick_lut[2][RN_LUT_ENTRIES];   /* not migrated: programs reload it every job (Q18) */
    uint32_t kick_lut_table, kick_lut_addr;   /* where the stream's next LUT_ACCESS_DATA goes */
    bool kick_submitted;     /* handed to the worker since it was kicked or the VM resumed */
    bool kick_loaded;        /* migration: the kick subsection came in */
    bool reset_held;         /* srst_a or srst_h asserted */
    uint32_t reset_lines;
    int64_t kick_ns;
    int64_t deadline_ns;
    QEMUTimer *timer;

    QemuThread thread;
    QemuMutex lock;          /* protects kick_regs and the job hand-over below */
    QemuCond cond;
    bool job_pending;        /* job_gen waits for the worker */
    bool busy;               /* the worker runs a kick (maybe a cancelled one) */
    bool job_done, quit;
    uint32_t job_gen, done_gen;
    struct rn_kick_result worker_result;   /* of done_gen */
    uint32_t log_left, log_suppressed;     /* the worker's message budget for its kick */
    QEMUBH *done_bh;
};

/* ---- rk3588-npu: the user-creatable device that builds the above on -M virt ---- */

#define TYPE_RK3588_NPU "rk3588-npu"
OBJECT_DECLARE_SIMPLE_TYPE(RK3588NPUState, RK3588_NPU)

struct RK3588NPUState {
    DeviceState parent_obj;
    uint32_t num_cores;
    uint64_t clock_hz;
    uint64_t dma_bytes_per_sec;
    uint32_t dma_bytes_per_cycle;
    uint32_t task_overhead;
    char *quirks;            /* quirks= (HARDWARE-UNKNOWNS Q15) */
    uint32_t threads;        /* host threads per task; 0: rn_threads_auto() */
    uint64_t base;
    uint32_t spi_base;
    RK3588NPUCoreState *cores[RK3588_NPU_MAX_CORES];
    RockchipIOMMUState *iommus[RK3588_NPU_MAX_CORES];
    DWHighResetState *reset;
};

#endif
