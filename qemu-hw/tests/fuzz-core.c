/*
 * libFuzzer target: random MMIO writes, regcmd buffers and memory fed to the core.
 *
 * Input (all little-endian):
 *   byte 0      flags: bits 0-1 DMA faults (0 none, 1 page map, 2 byte budget, 3 both);
 *               bits 2-4 the final kick's TASK_NUMBER - 1; bit 5 quirks from bytes 2-5 (else
 *               the defaults); bit 6 run every kick as QEMU does, on a private copy of the core
 *               that is adopted afterwards; bit 7 (with bit 6) cancel the kick, as a VM stop
 *               does, and run it again from its snapshot, as the VM's resume does
 *   byte 1      N, the number of MMIO writes
 *   bytes 2-5   quirk mask (enum rn_quirk bits), with flag bit 5; bit 31 (always): 3 host threads
 *               per task (threads.c), as the device's threads= property gives them
 *   bytes 6-9   DMA byte budget (fault mode 2): every access after that many bytes faults, the
 *               way a TLB miss on an unmapped page faults a task half way; bits 0-2 also give the
 *               task after which bit 7 cancels, or bits 3-7, when not 0, the DMA access (read or
 *               write, from 1) at which it cancels: inside a task, as a stop mid-task does. A
 *               cancelled run that completed no task must have written nothing (else abort())
 *   bytes 10-25 page map (fault mode 1): 2 bits per 4 KiB page of IOVAs 0..256 KiB, bit 0 = reads
 *               fault, bit 1 = writes fault (an IOMMU's unmapped / read-only pages)
 *   N x 6 bytes MMIO writes (offset le16, value le32; a write that requests a kick runs it)
 *   the rest    NPU memory mapped at IOVA 0 (at least one page; any access past it faults).
 * A final kick as mainline rocket issues it executes the regcmd at IOVA 0; with TASK_NUMBER > 1,
 * regcmds that link to the next (PC_BASE_ADDRESS / PC_REGISTER_AMOUNTS in the stream) run as one
 * kick. Built without libFuzzer, main() replays the files named on the command line (the
 * sanitizer test run uses that on the seed corpus). qemu-hw/tests/make-fuzz-seeds.py writes the
 * seeds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quirks.h"
#include "rknpu.h"

#define HDR 26
#define MAP_PAGES 64

struct fz_mem {
    uint8_t *p;
    size_t len;
    int fault_map, fault_budget;
    uint64_t budget;
    const uint8_t *map;
};

static struct rn_core core, work;
static int worker_mode, cancel_mode;
static uint32_t cancel_after, cancel_at_dma, tasks_seen, dma_seen;

/* Bit 7's cancel at a DMA access: the worker sees it at its next check, as with a VM stop. */
static void fz_dma_cancel(void)
{
    if (cancel_mode && cancel_at_dma && ++dma_seen == cancel_at_dma) {
        rn_core_cancel(&work);
    }
}

static int fz_fault(struct fz_mem *m, uint32_t iova, size_t len, int write)
{
    if ((uint64_t)iova + len > m->len) {
        return -1;
    }
    if (m->fault_budget) {
        if (len > m->budget) {
            m->budget = 0;
            return -1;
        }
        m->budget -= len;
    }
    if (m->fault_map && len) {
        for (uint64_t pg = iova >> 12; pg <= ((uint64_t)iova + len - 1) >> 12 && pg < MAP_PAGES;
             pg++) {
            if ((m->map[pg / 4] >> (2 * (pg % 4))) & (write ? 2 : 1)) {
                return -1;
            }
        }
    }
    return 0;
}

static int fz_read(void *o, uint32_t iova, void *buf, size_t len)
{
    struct fz_mem *m = o;
    fz_dma_cancel();
    if (fz_fault(m, iova, len, 0)) {
        return -1;
    }
    memcpy(buf, m->p + iova, len);
    return 0;
}

static int fz_write(void *o, uint32_t iova, const void *buf, size_t len)
{
    struct fz_mem *m = o;
    fz_dma_cancel();
    if (fz_fault(m, iova, len, 1)) {
        return -1;
    }
    memcpy(m->p + iova, buf, len);
    return 0;
}

static int verbose;   /* replay with FUZZ_CORE_VERBOSE=1: the core's messages and every task */

static void fz_log(void *o, enum rn_log_kind k, const char *msg)
{
    (void)o;
    (void)k;
    if (verbose) {
        fprintf(stderr, "  log: %s\n", msg);
    }
}


static void fz_on_task(void *o, const struct rn_task_stats *st)
{
    (void)o;
    if (verbose) {
        fprintf(stderr, "  task %u at 0x%x: op_en 0x%x error 0x%x macs %llu quirks 0x%x\n",
                st->kick_task, st->regcmd_iova, st->op_en, st->error,
                (unsigned long long)st->macs, st->quirks);
    }
    if (cancel_mode && !cancel_at_dma && ++tasks_seen > cancel_after) {
        rn_core_cancel(&work);
    }
}

/* What rk3588-npu-core.c does: the worker runs the kick on a copy of the registers; a cancelled
 * kick (VM stop) runs again from the same snapshot (VM resume) and only then is adopted. */
static void run_kick(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res)
{
    if (!worker_mode) {
        rn_core_run(c, mem, res);
    } else {
        struct fz_mem *m = mem->opaque;
        uint8_t *before = cancel_mode ? malloc(m->len) : NULL;
        if (before) {
            memcpy(before, m->p, m->len);
        }
        for (int attempt = 0; attempt < 2; attempt++) {
            memcpy(work.regs, c->regs, sizeof(work.regs));
            work.executer = c->executer;
            memcpy(work.lut, c->lut, sizeof(work.lut));
            work.lut_table = c->lut_table;
            work.lut_addr = c->lut_addr;
            work.task_count = 0;
            work.timing = c->timing;
            work.quirks = c->quirks;
            atomic_store(&work.cancel, 0);
            tasks_seen = dma_seen = 0;
            cancel_mode = cancel_mode && attempt == 0;
            rn_core_run(&work, mem, res);
            if (!res->cancelled) {
                break;
            }
            /* stopped before any task completed: not one byte of it may be in memory */
            if (before && !res->tasks && memcmp(before, m->p, m->len)) {
                fprintf(stderr, "fuzz-core: a cancelled kick wrote memory\n");
                abort();
            }
        }
        free(before);
        if (res->cancelled) {
            return;
        }
        rn_core_adopt(c, &work);
    }
    rn_core_complete(c, res);
}

static void write_reg(struct rn_core *c, const struct rn_mem *mem, uint32_t off, uint32_t v)
{
    struct rn_kick_result res;
    if (rn_core_write(c, off, v)) {
        run_kick(c, mem, &res);
        if (res.hang) {
            rn_core_reset(c);
        }
    }
    (void)rn_core_read(c, off);
    (void)rn_core_irq_level(c);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    static const uint8_t no_map[16];
    struct fz_mem m = { 0 };
    struct rn_mem mem = { &m, fz_read, fz_write };
    uint8_t hdr[HDR] = { 0 };
    size_t n, pos = HDR;
    uint32_t flags, ntasks;

    if (!init) {
        rn_core_init(&core);
        rn_core_init(&work);
        core.log = work.log = fz_log;
        core.on_task = work.on_task = fz_on_task;
        init = 1;
    }
    memcpy(hdr, data, size < HDR ? size : HDR);
    flags = hdr[0];
    n = hdr[1];
    rn_core_reset(&core);
    core.quirks = (flags & 0x20) ? le32(hdr + 2) & ((1u << RN_QUIRK_COUNT) - 1)
                                 : rn_quirks_default();
    core.threads = work.threads = (le32(hdr + 2) >> 31) ? 3 : 1;
    worker_mode = (flags >> 6) & 1;
    cancel_after = le32(hdr + 6) & 7;
    cancel_at_dma = (le32(hdr + 6) >> 3) & 31;
    m.fault_map = flags & 1;
    m.fault_budget = (flags >> 1) & 1;
    m.budget = le32(hdr + 6);
    m.map = size >= HDR ? data + 10 : no_map;
    if (pos > size) {
        pos = size;
    }
    if (pos + 6 * n > size) {
        n = (size - pos) / 6;
    }
    m.len = size - pos - 6 * n;
    m.len = m.len < 4096 ? 4096 : m.len;
    m.p = calloc(1, m.len);
    memcpy(m.p, data + pos + 6 * n, size - pos - 6 * n);
    for (size_t i = 0; i < n; i++, pos += 6) {
        uint32_t off = (uint32_t)(data[pos] | data[pos + 1] << 8);
        cancel_mode = worker_mode && (flags >> 7);
        write_reg(&core, &mem, off, le32(data + pos + 2));
    }
    /* the kick rocket_job_hw_submit() issues, on whatever the writes above left behind */
    ntasks = 1 + ((flags >> 2) & 7);
    cancel_mode = worker_mode && (flags >> 7);
    rn_core_write(&core, RN_PC_BASE_ADDRESS, 1);
    rn_core_write(&core, RN_CNA_S_POINTER, 0xE);
    rn_core_write(&core, RN_CORE_S_POINTER, 0xE);
    rn_core_write(&core, RN_PC_BASE_ADDRESS, 0);
    rn_core_write(&core, RN_PC_REGISTER_AMOUNTS, 64);
    rn_core_write(&core, RN_PC_INTERRUPT_MASK, 0x300);
    rn_core_write(&core, RN_PC_TASK_CON, 0x7000 | ntasks);
    write_reg(&core, &mem, RN_PC_OPERATION_ENABLE, 1);
    if (verbose) {
        fprintf(stderr, "  raw status 0x%x\n", rn_core_read(&core, RN_PC_INTERRUPT_RAW_STATUS));
    }
    free(m.p);
    return 0;
}

#ifndef RN_LIBFUZZER
int main(int argc, char **argv)
{
    verbose = getenv("FUZZ_CORE_VERBOSE") != NULL;
    for (int i = 1; i < argc; i++) {
        if (verbose) {
            fprintf(stderr, "%s\n", argv[i]);
        }
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf;
        long len;
        if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
            fprintf(stderr, "fuzz-core: cannot read %s\n", argv[i]);
            return 2;
        }
        buf = malloc((size_t)len + 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "fuzz-core: cannot read %s\n", argv[i]);
            return 2;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
    }
    printf("fuzz-core: replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
