/* The PC: regcmd fetch, entry decoding and the task loop of one kick (HARDWARE-UNKNOWNS Q1). */
#include <string.h>

#include "hwchoices.h"
#include "internal.h"

#define MAX_LOGGED_BAD_ENTRIES 4
#define CANCEL_ENTRIES 4096   /* entries between cancel checks: each may format a log message */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Apply one register write of the stream; returns true if it wrote PC_BASE_ADDRESS. */
static bool stream_write(struct rn_core *c, uint64_t e)
{
    uint32_t blocks = rn_entry_blocks(e), value = rn_entry_value(e);
    uint32_t low = rn_entry_offset(e) & 0xFFF;
    bool wrote_base = false;
    for (uint32_t left = blocks & ((1u << RN_BLK_DDMA) - 1); left; left &= left - 1) {
        int b = __builtin_ctz(left);   /* the selected blocks, in order */
        uint32_t off = rn_block_base((enum rn_block)b) | low;
        const struct rn_reg_info *r;
        if (b == RN_BLK_PC) {
            if (off == RN_PC_BASE_ADDRESS || off == RN_PC_REGISTER_AMOUNTS) {
                c->regs[off / 4] = value;
                wrote_base |= off == RN_PC_BASE_ADDRESS;
            } else {
                rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: regcmd write 0x%x to PC 0x%03x dropped",
                        value, off);
            }
            continue;
        }
        r = rn_reg_lookup(off);
        if (!r || r->access == RN_ACC_RO) {
            rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: regcmd write 0x%x to %s 0x%04x dropped",
                    value, r ? "read-only" : "unknown", off);
            continue;
        }
        rn_store_block_reg(c, off, value);
    }
    return wrote_base;
}

/* Fetch and apply one task's entries, then run its op_en. */
static void run_task(struct rn_core *c, const struct rn_mem *mem, uint32_t base, uint32_t amount,
                     uint32_t index, struct rn_task_outcome *o, bool *wrote_base)
{
    uint32_t n = RN_PC_FETCH_ENTRIES(amount), bad = 0;
    uint8_t *buf = rn_scratch(c, RN_BUF_REGCMD, (size_t)n * 8);
    memset(o, 0, sizeof(*o));
    o->st.regcmd_iova = base;
    o->st.kick_task = index;
    *wrote_base = false;
    if (!buf || mem->read(mem->opaque, base, buf, (size_t)n * 8)) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: regcmd fetch of %u entries at 0x%08x failed", n,
                base);
        o->error = RN_ERR_DMA_READ;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = le64(buf + 8 * (size_t)i);
        if (i % CANCEL_ENTRIES == CANCEL_ENTRIES - 1 && rn_cancelled(c)) {
            return;
        }
        switch (rn_entry_kind(e)) {
        case RN_ENTRY_WRITE:
            *wrote_base |= stream_write(c, e);
            break;
        case RN_ENTRY_OP_EN:
            o->st.op_en = rn_entry_value(e);
            rn_pipeline_run(c, mem, o->st.op_en, o);
            o->st.bytes_read += (uint64_t)(i + 1) * 8;
            return;
        case RN_ENTRY_INVALID:
            if (bad++ < MAX_LOGGED_BAD_ENTRIES) {
                rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: invalid regcmd entry %u: 0x%016llx", i,
                        (unsigned long long)e);
            }
            break;
        default:
            break;
        }
    }
    rn_logf(c, RN_LOG_GUEST_ERROR,
            "rknpu: regcmd at 0x%08x has no op_en entry in %u entries (%u invalid)", base, n, bad);
    o->error = RN_ERR_DMA_READ;
}

static void add_stats(struct rn_kick_result *res, const struct rn_task_stats *st)
{
    res->macs += st->macs;
    res->bytes_read += st->bytes_read;
    res->bytes_written += st->bytes_written;
    res->cycles += st->cycles;
}

static void run_kick(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res)
{
    uint32_t ntasks = RN_FX(REG(c, PC_TASK_CON), PC, TASK_CON, TASK_NUMBER);
    uint32_t base = REG(c, PC_BASE_ADDRESS) & ~0xFu;
    uint32_t amount = RN_FX(REG(c, PC_REGISTER_AMOUNTS), PC, REGISTER_AMOUNTS, PC_DATA_AMOUNT);
    uint32_t done = RN_IRQ_DPU_0;

    memset(res, 0, sizeof(*res));
    c->cacc_pixels = 0;   /* the integer accumulator clears per kick, not per task (Q15) */
    if (ntasks == 0) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: kick with TASK_NUMBER 0");
        res->raw_bits = RN_ERR_DMA_READ | done;
        return;
    }
    for (uint32_t t = 0; t < ntasks; t++) {
        struct rn_task_outcome o;
        bool wrote_base;
        if (rn_cancelled(c)) {
            res->cancelled = true;
            return;
        }
        run_task(c, mem, base, amount, t, &o, &wrote_base);
        if (!o.wrote && rn_cancelled(c)) {
            /* stopped, or done without a write: either way not reported, the re-run does it */
            res->cancelled = true;
            return;
        }
        o.st.error = o.error;
        rn_cycles_estimate(&c->timing, &o.st);
        add_stats(res, &o.st);
        res->tasks++;
        if (c->on_task) {
            c->on_task(c->task_opaque, &o.st);
        }
        if (o.hang) {
            res->hang = true;
            return;
        }
        if (res->macs > RN_MAX_KICK_MACS && !o.error) {
            rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: kick exceeds %llu MACs, stopped",
                    (unsigned long long)RN_MAX_KICK_MACS);
            o.error = RN_ERR_DMA_READ;
        }
        done = rn_done_irq_bits(o.st.op_en, (c->executer >> RN_BLK_DPU) & 1,
                                (c->executer >> RN_BLK_PPU) & 1);
        if (o.error) {
            res->raw_bits = o.error | done;
            return;
        }
        c->executer = rn_pp_after_task(c->regs, c->executer);
        c->task_count = t + 1;
        if (!wrote_base) {
            break;   /* no in-stream link: the kick ends here */
        }
        base = REG(c, PC_BASE_ADDRESS) & ~0xFu;
        amount = RN_FX(REG(c, PC_REGISTER_AMOUNTS), PC, REGISTER_AMOUNTS, PC_DATA_AMOUNT);
    }
    res->raw_bits = done;
}

void rn_core_run(struct rn_core *c, const struct rn_mem *mem, struct rn_kick_result *res)
{
    run_kick(c, mem, res);
    rn_core_trim(c, RN_SCRATCH_KEEP);
}
