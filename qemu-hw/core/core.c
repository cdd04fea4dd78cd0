/* The register file as the CPU sees it: MMIO semantics, reset, interrupt line, kick latching. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hwchoices.h"
#include "internal.h"

void rn_logf(struct rn_core *c, enum rn_log_kind kind, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    if (!c->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->log(c->log_opaque, kind, msg);
}

void rn_core_init(struct rn_core *c)
{
    size_t n;
    memset(c, 0, sizeof(*c));
    rn_reg_table(&n);   /* build the lookup table before any worker thread can race on it */
    rn_timing_default(&c->timing);
    c->quirks = rn_quirks_default();
    rn_core_reset(c);
}

void rn_core_reset(struct rn_core *c)
{
    size_t n;
    const struct rn_reg_info *t = rn_reg_table(&n);
    memset(c->regs, 0, sizeof(c->regs));
    for (size_t i = 0; i < n; i++) {
        c->regs[t[i].offset / 4] = t[i].reset;
    }
    c->executer = 0;
    c->task_count = 0;
    memset(c->lut, 0, sizeof(c->lut));
    c->lut_table = c->lut_addr = 0;
    c->kicked = false;
    atomic_store_explicit(&c->cancel, 0, memory_order_relaxed);
}

static bool is_s_pointer(uint32_t offset)
{
    enum rn_block b = rn_block_of(offset);
    return b >= RN_BLK_CNA && b <= RN_BLK_PPU_RDMA && (offset & 0xFFF) == 0x004;
}

void rn_store_block_reg(struct rn_core *c, uint32_t offset, uint32_t value)
{
    if (is_s_pointer(offset)) {
        enum rn_block b = rn_block_of(offset);
        if (RN_FX(value, CNA, S_POINTER, EXECUTER_PP_CLEAR)) {
            c->executer &= ~(1u << b);
        }
        if (RN_FX(value, CNA, S_POINTER, POINTER_PP_CLEAR)) {
            value &= ~1u;
        }
        value &= 0x3000000Fu;   /* stored bits; EXECUTER reads from c->executer */
    }
    if (offset == RN_DPU_LUT_ACCESS_CFG || offset == RN_DPU_LUT_ACCESS_DATA) {
        rn_lut_write(c, offset, value);
    }
    c->regs[offset / 4] = value;
}

/* Common checks of an MMIO access; returns the register or NULL after logging. */
static const struct rn_reg_info *mmio_reg(struct rn_core *c, uint32_t offset, const char *what)
{
    const struct rn_reg_info *r;
    if (offset >= RN_WINDOW_SIZE || (offset & 3)) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: %s at bad offset 0x%x", what, offset);
        return NULL;
    }
    if (rn_block_of(offset) == RN_BLK_COUNT) {
        rn_logf(c, RN_LOG_GUEST_ERROR,
                "rknpu: %s of undecoded page at 0x%04x (hard-locks real silicon)", what, offset);
        return NULL;
    }
    r = rn_reg_lookup(offset);
    if (!r) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: %s of unknown register 0x%04x", what, offset);
    }
    return r;
}

uint32_t rn_core_read(struct rn_core *c, uint32_t offset)
{
    const struct rn_reg_info *r = mmio_reg(c, offset, "read");
    if (!r) {
        return 0;
    }
    if (r->access == RN_ACC_WO) {
        return 0;
    }
    switch (offset) {
    case RN_PC_INTERRUPT_STATUS:
        return REG(c, PC_INTERRUPT_RAW_STATUS) & REG(c, PC_INTERRUPT_MASK);
    case RN_PC_TASK_STATUS:
        return REG(c, PC_TASK_STATUS) | (c->task_count & 0xFFF);
    default:
        break;
    }
    if (is_s_pointer(offset)) {
        return c->regs[offset / 4] | (((c->executer >> r->block) & 1u) << 16);
    }
    return c->regs[offset / 4];
}

bool rn_core_write(struct rn_core *c, uint32_t offset, uint32_t value)
{
    const struct rn_reg_info *r = mmio_reg(c, offset, "write");
    if (!r) {
        return false;
    }
    if (r->access == RN_ACC_RO) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: write 0x%x to read-only %s_%s", value,
                rn_block_name(r->block), r->name);
        return false;
    }
    switch (offset) {
    case RN_PC_OPERATION_ENABLE:
        REG(c, PC_OPERATION_ENABLE) = value;
        if (!(value & 1)) {
            return false;
        }
        if (RN_FX(REG(c, PC_BASE_ADDRESS), PC, BASE_ADDRESS, PC_SEL)) {
            rn_logf(c, RN_LOG_UNIMP, "rknpu: kick in slave mode (PC_SEL=1) is not modelled");
            return false;
        }
        if (c->kicked) {
            rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: kick while the core is busy ignored");
            return false;
        }
        c->kicked = true;
        REG(c, PC_TASK_STATUS) = 0;
        return true;
    case RN_PC_INTERRUPT_CLEAR:
        REG(c, PC_INTERRUPT_RAW_STATUS) &= ~value;
        return false;
    case RN_PC_INTERRUPT_MASK:
        REG(c, PC_INTERRUPT_MASK) = value & RN_IRQ_ALL;
        return false;
    case RN_PC_TASK_CON:
        if (RN_FX(value, PC, TASK_CON, TASK_COUNT_CLEAR)) {
            c->task_count = 0;
        }
        REG(c, PC_TASK_CON) = value & 0x1FFFu & ~RN_FV(PC, TASK_CON, TASK_COUNT_CLEAR, 1);
        return false;
    case RN_GLOBAL_OPERATION_ENABLE:
        rn_logf(c, RN_LOG_UNIMP, "rknpu: direct GLOBAL_OPERATION_ENABLE 0x%x not modelled",
                value);
        break;
    default:
        break;
    }
    rn_store_block_reg(c, offset, value);
    return false;
}

bool rn_core_irq_level(const struct rn_core *c)
{
    return (REG(c, PC_INTERRUPT_RAW_STATUS) & REG(c, PC_INTERRUPT_MASK) & RN_IRQ_LINE_MASK) != 0;
}

void rn_core_complete(struct rn_core *c, const struct rn_kick_result *res)
{
    if (res->hang) {
        return;   /* stays busy until reset */
    }
    c->kicked = false;
    if (!res->cancelled) {
        REG(c, PC_INTERRUPT_RAW_STATUS) |= res->raw_bits & RN_IRQ_ALL;
        REG(c, PC_TASK_STATUS) = RN_TASK_STATUS_DONE;
        c->task_count = 0;
    }
}

void rn_core_adopt(struct rn_core *c, const struct rn_core *work)
{
    /* Everything the stream may write: block registers and the PC link registers. */
    memcpy(&c->regs[0x1000 / 4], &work->regs[0x1000 / 4], RN_WINDOW_SIZE - 0x1000);
    REG(c, PC_BASE_ADDRESS) = REG(work, PC_BASE_ADDRESS);
    REG(c, PC_REGISTER_AMOUNTS) = REG(work, PC_REGISTER_AMOUNTS);
    c->executer = work->executer;
    c->task_count = work->task_count;
    memcpy(c->lut, work->lut, sizeof(c->lut));   /* a regcmd may have filled the LUT */
    c->lut_table = work->lut_table;
    c->lut_addr = work->lut_addr;
}

void rn_core_cancel(struct rn_core *c)
{
    atomic_store_explicit(&c->cancel, 1, memory_order_relaxed);
}

bool rn_dma_get(struct rn_core *c, const struct rn_mem *m, uint32_t iova, void *buf, size_t len,
                struct rn_task_outcome *out)
{
    uint8_t *p = buf;
    /* an access that crosses 4 GiB goes whole: what it does there is the host's business */
    size_t step = (uint64_t)iova + len > (1ull << 32) ? len : RN_DMA_CHUNK;
    do {
        size_t n = len < step ? len : step;
        if (rn_cancelled(c)) {
            return false;
        }
        if (m->read(m->opaque, iova, p, n)) {
            out->error |= RN_ERR_DMA_READ;
            return false;
        }
        iova += (uint32_t)n;
        p += n;
        len -= n;
    } while (len);
    return true;
}

void rn_core_kick_sync(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res)
{
    rn_core_run(c, mem, res);
    rn_core_complete(c, res);
}
