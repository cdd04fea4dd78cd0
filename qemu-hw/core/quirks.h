/*
 * The RK3588 NPU's documented failure modes ("quirks"), modelled by default so the emulator fails
 * where a board fails. HARDWARE-UNKNOWNS.md Q15 gives each one's trigger, effect, evidence and
 * confidence; the triggers are the pure functions below, the effects live where the data flows
 * (pipeline.c). rn_core.quirks selects which are applied ("quirks=off" = ideal hardware).
 */
#ifndef RKNPU_QUIRKS_H
#define RKNPU_QUIRKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stable names and order: the bit of each quirk in masks and statistics. */
enum rn_quirk {
    RN_QUIRK_CBUF_DATA_OVERFLOW,   /* feature rows beyond DATA_BANK·32 KiB are not stored */
    RN_QUIRK_SHORT_DATA_ENTRIES,   /* DATA_ENTRIES < row size: rows overlap in the CBUF */
    RN_QUIRK_ENTRY_SLAB_WRAP,      /* 11-bit CBUF slab base wraps on wide, deep rows */
    RN_QUIRK_FC_DATA_BANK,         /* FC_DATA_BANK != 0 in conv mode shifts the feature read */
    RN_QUIRK_SIZE_E,               /* SIZE_E differs from the output writer's line size */
    RN_QUIRK_MRDMA_TRAP,           /* MRDMA enabled with nothing feeding it: hang */
    RN_QUIRK_MAC_GATING,           /* CORE MAC_GATING clock gates cleared */
    RN_QUIRK_DENSE_MISALIGNED,     /* dense (ARGB) input base not 16-byte aligned */
    RN_QUIRK_S_POINTER_CORE_BITS,  /* CNA/CORE S_POINTER[29:28] != core index: hang */
    RN_QUIRK_ODD_KERNELS,          /* int8 direct conv with an odd WEIGHT_KERNELS: ±2 LSB noise */
    RN_QUIRK_CHAIN_INT_ACC,        /* raw integer accumulator not cleared between chained tasks */
    RN_QUIRK_FLYING_COMB_USE,      /* DPU-only task with COMB_USE bit 0: never completes */
    RN_QUIRK_PPU_WIDTH_HANG,       /* stride-1 pool with a 3..8 window over a wide input: hang */
    RN_QUIRK_PPU_KERNEL16_PAD7,    /* pool window 16 with pad 7: every output is the first input */
    RN_QUIRK_COUNT
};

struct rn_quirk_info {
    const char *name;
    bool default_on;
    char confidence;               /* H, M or L (HARDWARE-UNKNOWNS.md) */
    const char *effect;
};

extern const struct rn_quirk_info rn_quirk_table[RN_QUIRK_COUNT];

uint32_t rn_quirks_default(void);
/*
 * Parse a quirk selection: "on"/"default", "off"/"none", "all", or a comma-separated list of
 * names applied to the default set, each "+name" / "name" (enable) or "-name" (disable).
 * Returns 0, or -1 with a message in err.
 */
int rn_quirks_parse(const char *spec, uint32_t *mask, char *err, size_t errlen);
/* Comma-separated names of the bits in mask ("" when none). */
void rn_quirks_format(uint32_t mask, char *buf, size_t len);

/* ---- CBUF feature geometry (surface mode), Q15 "CBUF units" ---- */

/*
 * One CBUF unit is 64 bytes (4 feature atoms). A row is stored slab-major: slab s (bytes
 * 64s..64s+63 of the pixel's channels: int8 channels, or ceil(C·bits/8) bytes for the other
 * precisions of Q19) of pixel x at unit s·W + x; a last partial slab of 1 or 2 atoms packs 4 or 2
 * pixels per unit, one of 3 atoms takes a unit per pixel.
 */
struct rn_cbuf_geom {
    uint32_t w, h, c;
    uint32_t atoms;          /* a: 16-byte atoms per pixel */
    uint32_t nfull;          /* whole slabs per pixel: a / 4 */
    uint32_t part;           /* atoms in the partial slab: a % 4 */
    uint64_t e64;            /* units one row needs (the correct DATA_ENTRIES) */
    uint64_t cap;            /* units the feature may use: DATA_BANK · 512 */
};

static inline void rn_cbuf_geom(struct rn_cbuf_geom *g, uint32_t w, uint32_t h, uint32_t c,
                                uint32_t data_bank)
{
    g->w = w;
    g->h = h;
    g->c = c;
    g->atoms = (c + 15) / 16;
    g->nfull = g->atoms / 4;
    g->part = g->atoms % 4;
    g->e64 = (uint64_t)g->nfull * w +
             (g->part == 3 ? w : ((uint64_t)w * g->part + 3) / 4);
    g->cap = (uint64_t)data_bank * 512;
}

/* Unit within its row, and byte within the unit, of channel c of pixel x. */
static inline uint64_t rn_cbuf_inrow(const struct rn_cbuf_geom *g, uint32_t x, uint32_t c,
                                     uint32_t *byte)
{
    uint32_t s = c / 64, b = c % 64;
    uint64_t base = (uint64_t)g->nfull * g->w;
    if (s < g->nfull || g->part == 3) {
        *byte = b;
        return (uint64_t)s * g->w + x;
    }
    if (g->part == 2) {
        *byte = (x % 2) * 32 + b;
        return base + x / 2;
    }
    *byte = (x % 4) * 16 + b;
    return base + x / 4;
}

/*
 * Inverse of rn_cbuf_inrow: the (pixel, channel) stored at byte `byte` of in-row unit u.
 * Returns false for bytes that hold no channel (padding).
 */
static inline bool rn_cbuf_elem(const struct rn_cbuf_geom *g, uint64_t u, uint32_t byte,
                                uint32_t *x, uint32_t *c)
{
    uint64_t base = (uint64_t)g->nfull * g->w;
    if (u < base) {
        *x = (uint32_t)(u % g->w);
        *c = (uint32_t)(u / g->w) * 64 + byte;
    } else if (g->part == 3) {
        *x = (uint32_t)(u - base);
        *c = g->nfull * 64 + byte;
    } else if (g->part == 2) {
        *x = (uint32_t)(u - base) * 2 + byte / 32;
        *c = g->nfull * 64 + byte % 32;
    } else if (g->part == 1) {
        *x = (uint32_t)(u - base) * 4 + byte / 16;
        *c = g->nfull * 64 + byte % 16;
    } else {
        return false;
    }
    return *x < g->w && *c < g->c;
}

/*
 * cbuf-data-overflow: the task's rows, stored `pitch` units apart (E64, or DATA_ENTRIES under
 * short-data-entries), need more units than its data banks hold.
 */
static inline bool rn_quirk_cbuf_overflow(const struct rn_cbuf_geom *g, uint64_t pitch)
{
    return (uint64_t)(g->h - 1) * pitch + g->e64 > g->cap;
}

/* short-data-entries: the programmed row size is below what a row needs. */
static inline bool rn_quirk_short_entries(const struct rn_cbuf_geom *g, uint32_t data_entries)
{
    return data_entries < g->e64;
}

/* entry-slab-wrap: the last slab's base (s·W) does not fit 11 bits. */
static inline bool rn_quirk_slab_wrap(const struct rn_cbuf_geom *g)
{
    uint32_t slabs = (g->atoms + 3) / 4;
    return slabs > 1 && (uint64_t)(slabs - 1) * g->w >= 2048;
}

/* Where the CNA reads in-row unit u from when the slab base wraps at 2^11. */
static inline uint64_t rn_slab_wrap_unit(const struct rn_cbuf_geom *g, uint64_t u)
{
    uint64_t s = u / g->w, base = s * g->w;
    if (u >= (uint64_t)g->nfull * g->w && g->part != 3) {
        base = (uint64_t)g->nfull * g->w;   /* the packed partial slab starts here */
    }
    return (base & 0x7FF) + (u - base);
}

/*
 * size-e: the SIZE_E every working output writer programs: kernel-group channels × output bytes
 * / 16 − 1, the group being the weight N-group (int4 64, int8 32, 16-bit and tf32 16) or the
 * depthwise group (int8 64, fp16 32): int8 → int8 conv 1, depthwise 3; int8 → int32 7; int4 →
 * int16 7; int16 → int32 3; fp16 → fp32 3, → fp16 1; fp16 depthwise → fp16 3 (Q19).
 */
static inline uint32_t rn_size_e_expected(uint32_t group, uint32_t out_bytes)
{
    return group * out_bytes / 16u - 1u;
}

/*
 * ppu-width-hang: the widths where a square stride-1 pool hangs (IR, Q15): 3x3 and 4x4 past 34
 * input columns, 5x5 to 8x8 past 20.
 */
static inline bool rn_quirk_ppu_width_hang(uint32_t kw, uint32_t kh, uint32_t sx, uint32_t sy,
                                           uint32_t in_w)
{
    if (kw != kh || sx != 1 || sy != 1) {
        return false;
    }
    return (kw >= 3 && kw <= 4 && in_w > 34) || (kw >= 5 && kw <= 8 && in_w > 20);
}

/* ppu-kernel16-pad7: a window 16 wide (high) with a pad of 7 on the same axis (AB, Q15). */
static inline bool rn_quirk_ppu_kernel16_pad7(uint32_t kw, uint32_t kh, uint32_t pl, uint32_t pr,
                                              uint32_t pt, uint32_t pb)
{
    return (kw == 16 && (pl == 7 || pr == 7)) || (kh == 16 && (pt == 7 || pb == 7));
}

/* mac-gating: bits 11 (lanes 0-7), 23 (lanes 8-15) and 24 (the whole array) must stay set. */
#define RN_MAC_GATE_LO (1u << 11)
#define RN_MAC_GATE_HI (1u << 23)
#define RN_MAC_GATE_ALL (1u << 24)

#endif
