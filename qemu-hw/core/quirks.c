/* The quirk table, the quirks=... switch, and how a firing quirk is reported (Q15). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conv.h"
#include "quirks.h"

const struct rn_quirk_info rn_quirk_table[RN_QUIRK_COUNT] = {
    [RN_QUIRK_CBUF_DATA_OVERFLOW] = { "cbuf-data-overflow", true, 'H',
        "input units past DATA_BANK*512 are not stored; they read stale units (last rows)" },
    [RN_QUIRK_SHORT_DATA_ENTRIES] = { "short-data-entries", true, 'L',
        "rows are stored DATA_ENTRIES apart: each row's tail reads the next row" },
    [RN_QUIRK_ENTRY_SLAB_WRAP] = { "entry-slab-wrap", true, 'H',
        "slabs whose base s*W passes 2047 read from (s*W) & 0x7FF" },
    [RN_QUIRK_FC_DATA_BANK] = { "fc-data-bank", true, 'M',
        "feature reads land FC_DATA_BANK banks further on; past the data banks they read 0" },
    [RN_QUIRK_SIZE_E] = { "size-e", true, 'M',
        "SIZE_E below the writer's line: only the first channels of each group are written; "
        "otherwise 1024 bytes are written and the task hangs" },
    [RN_QUIRK_MRDMA_TRAP] = { "mrdma-trap", true, 'H',
        "the DPU waits for MRDMA data that never comes: hang until reset" },
    [RN_QUIRK_MAC_GATING] = { "mac-gating", true, 'M',
        "bit 24 clear: hang; bit 11 / 23 clear: output lanes 0-7 / 8-15 read 0" },
    [RN_QUIRK_DENSE_MISALIGNED] = { "dense-misaligned", true, 'H',
        "dense input is fetched from the base rounded down to 16 bytes" },
    [RN_QUIRK_S_POINTER_CORE_BITS] = { "s-pointer-core-bits", false, 'L',
        "CNA/CORE S_POINTER[29:28] not the core's index: the task hangs" },
    [RN_QUIRK_ODD_KERNELS] = { "odd-kernels", true, 'L',
        "logged only: boards give ±2 LSB that alternates between jobs (not deterministic)" },
    [RN_QUIRK_CHAIN_INT_ACC] = { "chain-int-acc", true, 'M',
        "a raw-accumulator task after the first of a kick adds the previous task's CACC "
        "(pixel p, channel o % 32) to its sums" },
    [RN_QUIRK_FLYING_COMB_USE] = { "flying-comb-use", true, 'H',
        "a DPU-only task with DPU_RDMA COMB_USE bit 0 set never completes: hang until reset" },
    [RN_QUIRK_PPU_WIDTH_HANG] = { "ppu-width-hang", true, 'M',
        "a square 3x3..8x8 stride-1 pool over more than 34 (3x3, 4x4) or 20 (5x5..8x8) input "
        "columns hangs until reset" },
    [RN_QUIRK_PPU_KERNEL16_PAD7] = { "ppu-kernel16-pad7", true, 'L',
        "a pool window of 16 with a pad of 7 on that axis: every output is the first input "
        "element of its lane" },
};

uint32_t rn_quirks_default(void)
{
    uint32_t m = 0;
    for (int q = 0; q < RN_QUIRK_COUNT; q++) {
        m |= rn_quirk_table[q].default_on ? 1u << q : 0;
    }
    return m;
}

static int quirk_by_name(const char *s, size_t n)
{
    for (int q = 0; q < RN_QUIRK_COUNT; q++) {
        if (strlen(rn_quirk_table[q].name) == n && !strncmp(rn_quirk_table[q].name, s, n)) {
            return q;
        }
    }
    return -1;
}

int rn_quirks_parse(const char *spec, uint32_t *mask, char *err, size_t errlen)
{
    uint32_t m = rn_quirks_default();
    const char *p = spec;
    if (!strcmp(spec, "on") || !strcmp(spec, "default") || !*spec) {
        *mask = m;
        return 0;
    }
    if (!strcmp(spec, "off") || !strcmp(spec, "none")) {
        *mask = 0;
        return 0;
    }
    if (!strcmp(spec, "all")) {
        *mask = (1u << RN_QUIRK_COUNT) - 1;
        return 0;
    }
    while (*p) {
        bool off = *p == '-';
        size_t n;
        int q;
        if (*p == '-' || *p == '+') {
            p++;
        }
        n = strcspn(p, ",");
        q = quirk_by_name(p, n);
        if (q < 0) {
            snprintf(err, errlen, "unknown quirk '%.*s' (known: on, off, all, or names from "
                     "HARDWARE-UNKNOWNS.md Q15, e.g. cbuf-data-overflow)", (int)n, p);
            return -1;
        }
        m = off ? m & ~(1u << q) : m | (1u << q);
        p += n;
        p += *p == ',';
    }
    *mask = m;
    return 0;
}

void rn_quirks_format(uint32_t mask, char *buf, size_t len)
{
    size_t at = 0;
    if (len) {
        buf[0] = 0;
    }
    for (int q = 0; q < RN_QUIRK_COUNT; q++) {
        if ((mask >> q) & 1) {
            int n = snprintf(buf + at, len > at ? len - at : 0, "%s%s", at ? "," : "",
                             rn_quirk_table[q].name);
            at += n > 0 ? (size_t)n : 0;
        }
    }
}

bool rn_quirk_fire(struct rn_core *c, struct rn_task_outcome *out, enum rn_quirk q,
                   const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    bool on = (c->quirks >> q) & 1;
    if (!on) {
        out->st.quirks_off |= 1u << q;
        return false;
    }
    if (!((out->st.quirks >> q) & 1)) {   /* logged once per task */
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: task %u: %s (quirk %s)", out->st.kick_task, msg,
                rn_quirk_table[q].name);
    }
    out->st.quirks |= 1u << q;
    return true;
}

/* ---- the triggers of one convolution task, after rn_conv_decode() (task.c) ---- */

#define R(name) REG(c, name)

/* CBUF quirks: the feature's trip through the convolution buffer (surface mode). */
static void cbuf_triggers(struct rn_core *c, struct rn_conv *d, struct rn_task_outcome *out)
{
    uint32_t con0 = R(CNA_CBUF_CON0), banks = RN_FX(con0, CNA, CBUF_CON0, DATA_BANK);
    uint32_t fc = RN_FX(con0, CNA, CBUF_CON0, FC_DATA_BANK);
    uint32_t entries = RN_FX(R(CNA_CBUF_CON1), CNA, CBUF_CON1, DATA_ENTRIES);
    struct rn_cbuf_geom *g = &d->cbuf;

    if (d->argb_n) {
        return;   /* the dense layout packs differently; no sweep covers it */
    }
    rn_cbuf_geom(g, d->wi, d->hi, d->cbytes, banks);   /* Q19: in bytes, as int8 channels */
    d->cbuf_pitch = g->e64;
    if (rn_quirk_short_entries(g, entries) &&
        rn_quirk_fire(c, out, RN_QUIRK_SHORT_DATA_ENTRIES,
                      "DATA_ENTRIES %u < %llu a row of %u x %u channels needs: each row's last "
                      "%llu units read the next row", entries, (unsigned long long)g->e64, g->w,
                      d->ci, (unsigned long long)(g->e64 - entries))) {
        d->cbuf_pitch = entries;
        d->cbuf_remap = true;
    }
    if (rn_quirk_cbuf_overflow(g, d->cbuf_pitch) &&
        rn_quirk_fire(c, out, RN_QUIRK_CBUF_DATA_OVERFLOW,
                      "DATA_BANK %u holds %llu units, %u rows need %llu: input rows %llu-%u not "
                      "stored", banks, (unsigned long long)g->cap, g->h,
                      (unsigned long long)((uint64_t)(g->h - 1) * d->cbuf_pitch + g->e64),
                      (unsigned long long)(d->cbuf_pitch ? g->cap / d->cbuf_pitch : 0),
                      g->h - 1)) {
        d->cbuf_remap = true;
    }
    if (rn_quirk_slab_wrap(g) &&
        rn_quirk_fire(c, out, RN_QUIRK_ENTRY_SLAB_WRAP,
                      "%u slabs x width %u: slab bases past 2047 wrap to the front of the row",
                      (g->atoms + 3) / 4, g->w)) {
        d->slab_wrap = d->cbuf_remap = true;
    }
    if (fc && !d->dw &&
        rn_quirk_fire(c, out, RN_QUIRK_FC_DATA_BANK,
                      "FC_DATA_BANK %u in convolution mode: feature read %u banks on", fc, fc)) {
        d->fc_shift = (uint64_t)fc * 512;
        d->cbuf_remap = true;
    }
}

/* The output writer's line (SIZE_E) against what the output's kernel group needs. */
static bool size_e_trigger(struct rn_core *c, struct rn_conv *d, struct rn_task_outcome *out)
{
    uint32_t ow = R(DPU_BS_OW_CFG), want = rn_size_e_expected(d->group_channels, d->out_bytes);
    uint32_t got;
    uint32_t e[3] = { RN_FX(ow, DPU, BS_OW_CFG, SIZE_E_0), RN_FX(ow, DPU, BS_OW_CFG, SIZE_E_1),
                      RN_FX(ow, DPU, BS_OW_CFG, SIZE_E_2) };
    bool od_bypass = RN_FX(ow, DPU, BS_OW_CFG, OD_BYPASS);
    d->surf_written = d->group_channels * d->out_bytes / 16;
    got = e[0] != want ? e[0] : e[1] != want ? e[1] : e[2];
    if (got == want ||
        !rn_quirk_fire(c, out, RN_QUIRK_SIZE_E, "SIZE_E %u/%u/%u, the writer needs %u%s",
                       e[0], e[1], e[2], want,
                       !od_bypass || got > want ? ": 1024 bytes written, then it hangs"
                                                : ": later surfaces of each group unwritten")) {
        return true;
    }
    if (!od_bypass || got > want) {
        d->size_e_hang = true;
    } else {
        d->surf_written = got + 1;
    }
    return true;
}

bool rn_conv_quirks(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out)
{
    uint32_t fm = R(DPU_RDMA_FEATURE_MODE_CFG), gate = R(CORE_MAC_GATING);
    uint32_t comb = RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, COMB_USE);
    uint32_t bits = (c->index & 3) << 28;

    /* Hangs first: nothing is computed or written. */
    if (!RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, MRDMA_DISABLE) && !(comb & 4) &&
        rn_quirk_fire(c, out, RN_QUIRK_MRDMA_TRAP,
                      "DPU_RDMA FEATURE_MODE_CFG 0x%x: MRDMA enabled with nothing feeding it "
                      "(op_en 0x%x): hangs until reset", fm, op_en)) {
        out->hang = true;
        return false;
    }
    if (!(gate & RN_MAC_GATE_ALL) &&
        rn_quirk_fire(c, out, RN_QUIRK_MAC_GATING,
                      "MAC_GATING 0x%08x: bit 24 clear stops the MAC array: hangs until reset",
                      gate)) {
        out->hang = true;
        return false;
    }
    if (c->index && ((R(CNA_S_POINTER) & (3u << 28)) != bits ||
                     (R(CORE_S_POINTER) & (3u << 28)) != bits) &&
        rn_quirk_fire(c, out, RN_QUIRK_S_POINTER_CORE_BITS,
                      "CNA/CORE S_POINTER 0x%x/0x%x lack core %u's bits 0x%x: hangs until reset",
                      R(CNA_S_POINTER), R(CORE_S_POINTER), c->index, bits)) {
        out->hang = true;
        return false;
    }
    if ((~gate & (RN_MAC_GATE_LO | RN_MAC_GATE_HI)) &&
        rn_quirk_fire(c, out, RN_QUIRK_MAC_GATING,
                      "MAC_GATING 0x%08x: output lanes %s read 0", gate,
                      !(gate & RN_MAC_GATE_LO) && !(gate & RN_MAC_GATE_HI) ? "0-15"
                      : !(gate & RN_MAC_GATE_LO) ? "0-7" : "8-15")) {
        d->lane_zero = (uint16_t)((gate & RN_MAC_GATE_LO ? 0 : 0x00FF) |
                                  (gate & RN_MAC_GATE_HI ? 0 : 0xFF00));
    }
    if (d->argb_n && ((d->feat_addr + d->dma_base) & 0xF) &&
        rn_quirk_fire(c, out, RN_QUIRK_DENSE_MISALIGNED,
                      "dense input at 0x%08x is fetched from 0x%08x", d->feat_addr + d->dma_base,
                      (d->feat_addr + d->dma_base) & ~0xFu)) {
        d->feat_addr = ((d->feat_addr + d->dma_base) & ~0xFu) - d->dma_base;
    }
    if (!d->dw && (d->k & 1) && d->prec == RN_CNA_INT8) {
        rn_quirk_fire(c, out, RN_QUIRK_ODD_KERNELS,
                      "WEIGHT_KERNELS %u is odd: boards give results that vary by 2 LSB "
                      "between jobs (not modelled)", d->k);
    }
    if (!RN_FX(R(CORE_MISC_CFG), CORE, MISC_CFG, QD_EN) && out->st.kick_task && c->cacc_pixels &&
        rn_quirk_fire(c, out, RN_QUIRK_CHAIN_INT_ACC,
                      "task %u of the kick on the raw accumulator (QD_EN 0): the CACC still "
                      "holds task %u's sums", out->st.kick_task, out->st.kick_task - 1)) {
        d->cacc_chain = true;
    }
    cbuf_triggers(c, d, out);
    return size_e_trigger(c, d, out);
}
