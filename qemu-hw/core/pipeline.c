/*
 * CNA fetch → CORE MAC → DPU (BS, BN, EW, OUT_CVT) → WDMA for one convolution task.
 * Inputs live in a padded HWC tile of (int8 + 128) bytes, so the MAC loops are u8 x s8 dot
 * products; the -128 is folded back with per-kernel weight sums.
 */
#include <string.h>

#include "conv.h"
#include "kernels.h"

#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))

struct tile {
    uint8_t *px;          /* [hp][wp][ci] of input + 128 */
    uint32_t hp, wp;
};

static bool dma_read(struct rn_core *c, const struct rn_mem *m, uint32_t iova, void *buf,
                     size_t len, struct rn_task_outcome *out)
{
    out->st.bytes_read += len;
    return rn_dma_get(c, m, iova, buf, len, out);
}

static uint8_t fetched_byte(const struct rn_conv *d, uint8_t raw, uint32_t ch)
{
    if (d->cvt_on && ((d->cvt_en >> (ch % 16)) & 1)) {
        raw = (uint8_t)rn_cna_cvt(raw, d->cvt_signed, d->cvt_add_first, d->cvt_half_up,
                                  &d->cvt[ch % 4]);
    }
    return raw ^ 0x80;
}

/*
 * Store input pixel row y (bytes of channels [c0, c0+n) at pitch `step`) into the tile, whose
 * data starts pt rows and pl columns in.
 */
static void store_row(const struct rn_conv *d, struct tile *t, uint32_t pt, uint32_t pl,
                      const uint8_t *row, uint32_t y, uint32_t c0, uint32_t n, uint32_t step)
{
    uint64_t ty = (uint64_t)y + pt;
    if (ty >= t->hp || pl >= t->wp) {
        return;
    }
    /* the bounds in locals: the stores below could alias d and t for the compiler */
    uint32_t nx = d->wi < t->wp - pl ? d->wi : t->wp - pl;
    size_t ci = d->ci;
    uint8_t *base = t->px + (ty * t->wp + pl) * ci + c0;
    if (!d->cvt_on && n == 16) {   /* whole atoms: two 8-byte words each (a byte loop was 57% of
                                    * a depthwise layer's time) */
        for (uint32_t x = 0; x < nx; x++) {
            uint64_t a, b;
            memcpy(&a, row + (size_t)x * step, 8), memcpy(&b, row + (size_t)x * step + 8, 8);
            a ^= 0x8080808080808080ull, b ^= 0x8080808080808080ull;
            memcpy(base + x * ci, &a, 8), memcpy(base + x * ci + 8, &b, 8);
        }
        return;
    }
    for (uint32_t x = 0; x < nx; x++) {
        uint8_t *dst = base + x * ci;
        const uint8_t *src = row + (size_t)x * step;
        if (!d->cvt_on) {
            for (uint32_t l = 0; l < n; l++) {
                dst[l] = src[l] ^ 0x80;
            }
        } else {
            for (uint32_t l = 0; l < n; l++) {
                dst[l] = fetched_byte(d, src[l], c0 + l);
            }
        }
    }
}

/*
 * The CBUF quirks (Q15): byte `byte` of pixel (y, x)'s channels is read from the CBUF unit the
 * CNA addresses for it, which holds whatever the fetch last stored there. Rows are stored
 * cbuf_pitch units apart and units past the data banks are never stored; reads past them wrap
 * into the banks (stale data), slab bases wrap at 2^11, FC_DATA_BANK moves every read that many
 * banks on, where past the feature's banks it finds no feature data.
 */
uint8_t rn_cbuf_byte(const struct rn_conv *d, const uint8_t *img, uint32_t y, uint32_t x,
                     uint32_t byte, uint8_t empty)
{
    const struct rn_cbuf_geom *g = &d->cbuf;
    uint32_t ub, sx, sc;
    uint64_t u = rn_cbuf_inrow(g, x, byte, &ub), r;
    if (d->slab_wrap) {
        u = rn_slab_wrap_unit(g, u);
    }
    u += (uint64_t)y * d->cbuf_pitch;
    if (!g->cap) {
        return empty;   /* no data bank: nothing was stored */
    }
    u = u % g->cap + d->fc_shift;
    if (u >= g->cap) {
        return empty;   /* FC_DATA_BANK points past the feature's banks: no feature data */
    }
    /* the last row stored over unit u */
    r = d->cbuf_pitch ? u / d->cbuf_pitch : g->h - 1;
    if (r >= g->h) {
        r = g->h - 1;
    }
    if (u - r * d->cbuf_pitch >= g->e64 ||
        !rn_cbuf_elem(g, u - r * d->cbuf_pitch, ub, &sx, &sc)) {
        return empty;
    }
    return img[((size_t)r * g->w + sx) * g->c + sc];
}

/* False when cancelled: a byte at a time, one row of pixels can take 100 ms. */
static bool cbuf_read(struct rn_core *c, const struct rn_conv *d, const struct tile *img,
                      struct tile *t)
{
    for (uint32_t y = 0; y < d->hi && (uint64_t)y + d->pt < t->hp; y++) {
        for (uint32_t x = 0; x < d->wi && (uint64_t)x + d->pl < t->wp; x++) {
            if (x % RN_CANCEL_BLOCK == 0 && rn_cancelled(c)) {
                return false;
            }
            uint8_t *dst = t->px + (((size_t)y + d->pt) * t->wp + x + d->pl) * d->ci;
            for (uint32_t ch = 0; ch < d->ci; ch++) {
                dst[ch] = rn_cbuf_byte(d, img->px, y, x, ch, 0x80);   /* int8 0 */
            }
        }
    }
    return true;
}

/* n pixels of the ci-byte pattern, by doubling copies */
static void fill_pixels(uint8_t *dst, const uint8_t *pattern, size_t ci, size_t n)
{
    size_t done = n ? 1 : 0, total = n * ci;
    if (n) {
        memcpy(dst, pattern, ci);
    }
    for (; done < n; done *= 2) {
        size_t bytes = done * ci < total - done * ci ? done * ci : total - done * ci;
        memcpy(dst + done * ci, dst, bytes);
    }
}

/* CNA: fill the padded tile and read the input window from memory (Q4, Q6, Q13). */
static bool fetch_input(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                        struct tile *t, struct rn_task_outcome *out)
{
    size_t pix = (size_t)t->hp * t->wp;
    uint8_t *pattern = rn_scratch(c, RN_BUF_PAD, d->ci);
    uint8_t *row;
    uint32_t base = d->feat_addr + d->dma_base;
    struct tile img;

    t->px = rn_scratch(c, RN_BUF_INPUT, pix * d->ci);
    if (!t->px || !pattern) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (uint32_t ch = 0; ch < d->ci; ch++) {
        pattern[ch] = (uint8_t)rn_pad_byte(d->pad_con1, d->dw, ch) ^ 0x80;
    }
    /* the pad pattern where no input pixel lands: every pixel is stored once either way */
    for (uint32_t y = 0; y < t->hp; y++) {
        uint8_t *r = t->px + (size_t)y * t->wp * d->ci;
        if (rn_cancelled(c)) {   /* up to 64 MiB of tile */
            return false;
        }
        if (y < d->pt || (uint64_t)y >= (uint64_t)d->pt + d->hi) {
            fill_pixels(r, pattern, d->ci, t->wp);
            continue;
        }
        uint32_t in_end = (uint64_t)d->pl + d->wi < t->wp ? d->pl + d->wi : t->wp;
        fill_pixels(r, pattern, d->ci, d->pl < t->wp ? d->pl : t->wp);
        if (in_end < t->wp) {
            fill_pixels(r + (size_t)in_end * d->ci, pattern, d->ci, t->wp - in_end);
        }
    }
    if (d->argb_n) {   /* dense mode: n bytes per pixel, channels >= n read 0 */
        uint8_t *raw = rn_scratch(c, RN_BUF_ROW, (size_t)d->wi * d->argb_n);
        row = rn_scratch(c, RN_BUF_WIDE, (size_t)d->wi * d->ci);
        if (!raw || !row) {
            out->error |= RN_ERR_DMA_READ;
            return false;
        }
        for (uint32_t y = 0; y < d->hi; y++) {
            uint32_t addr = (uint32_t)(base + (int64_t)y * d->row_pitch);
            if (!dma_read(c, m, addr, raw, (size_t)d->wi * d->argb_n, out)) {
                return false;
            }
            for (uint32_t x = 0; x < d->wi; x++) {
                for (uint32_t ch = 0; ch < d->ci; ch++) {
                    row[(size_t)x * d->ci + ch] =
                        ch < d->argb_n ? raw[(size_t)x * d->argb_n + ch] : 0;
                }
            }
            store_row(d, t, d->pt, d->pl, row, y, 0, d->ci, d->ci);
        }
        return true;
    }
    row = rn_scratch(c, RN_BUF_ROW, (size_t)d->wi * 16);
    if (!row) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (d->cbuf_remap) {   /* the whole feature first, as the CBUF would hold it */
        img.px = rn_scratch(c, RN_BUF_IMAGE, (size_t)d->wi * d->hi * d->ci);
        img.hp = d->hi;
        img.wp = d->wi;
        if (!img.px) {
            out->error |= RN_ERR_DMA_READ;
            return false;
        }
    }
    for (uint32_t s = 0; s * 16 < d->ci; s++) {
        uint32_t n = d->ci - s * 16 < 16 ? d->ci - s * 16 : 16;
        for (uint32_t y = 0; y < d->hi; y++) {
            uint32_t addr = (uint32_t)(base + (int64_t)s * d->surf_pitch + (int64_t)y * d->row_pitch);
            if (!dma_read(c, m, addr, row, (size_t)d->wi * 16, out)) {
                return false;
            }
            if (d->cbuf_remap) {
                store_row(d, &img, 0, 0, row, y, s * 16, n, 16);
            } else {
                store_row(d, t, d->pt, d->pl, row, y, s * 16, n, 16);
            }
        }
    }
    return !d->cbuf_remap || cbuf_read(c, d, &img, t);
}

/* Packed weights: conv rows [nout_pad][kp] in (ky, kx, c) order, depthwise [taps][ci] (Q5). */
struct wpack {
    int8_t *w;
    int32_t *sum;        /* per conv kernel: sum of its weights */
    size_t kp, nk, nout_pad;
};

/* n bytes (a window row: kw * ci, a weight group) without a libc call: two overlapping moves */
static inline void copy_seg(uint8_t *dst, const uint8_t *src, size_t n)
{
    if (n > 32 && n <= 64) {
        memcpy(dst, src, 32);
        memcpy(dst + n - 32, src + n - 32, 32);
    } else if (n >= 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        memcpy(dst, src, n);
    }
}

static bool fetch_weights(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                          struct wpack *p, struct rn_task_outcome *out)
{
    uint32_t taps = d->kh * d->kw, g = d->dw ? 64 : 32;
    uint8_t *raw = rn_scratch(c, RN_BUF_WEIGHTS, d->wt_bytes);
    if (!raw) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    out->st.bytes_read += rn_weight_dma_bytes(REG(c, CNA_CBUF_CON0), d->wt_bytes);
    if (!rn_dma_get(c, m, d->wt_addr + d->dma_base, raw, d->wt_bytes, out)) {
        return false;
    }
    p->nk = d->dw ? 1 : (d->k < d->co_calc ? d->k : d->co_calc);
    p->kp = d->dw ? (size_t)taps * d->ci : ALIGN_UP((size_t)taps * d->ci, RN_KP_ALIGN);
    /* whole atoms of GEMM sums, so that the DPU reads every lane of a pixel's row */
    p->nout_pad = d->dw ? 1 : ALIGN_UP(p->nk, 4);
    if (!d->dw && p->nout_pad < ALIGN_UP((size_t)d->co_calc, 16)) {
        p->nout_pad = ALIGN_UP((size_t)d->co_calc, 16);
    }
    p->w = rn_scratch(c, RN_BUF_WPACK, p->nout_pad * p->kp);
    p->sum = rn_scratch(c, RN_BUF_SUM, (p->nout_pad + d->co + 1) * sizeof(int32_t));
    if (!p->w || !p->sum) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    memset(p->w, 0, p->nout_pad * p->kp);
    for (uint32_t o = 0; o < p->nk; o++) {
        for (uint32_t c0 = 0; c0 < d->ci; c0 += g) {
            uint32_t gw = d->ci - c0 < g ? d->ci - c0 : g;
            /* a group's taps lie a fixed step apart (Q5): two offsets give every one */
            uint64_t off = rn_weight_offset(d->dw, d->ci, d->kh, d->kw, d->k, o, c0, 0, 0);
            uint64_t step = taps < 2 ? 0 : rn_weight_offset(d->dw, d->ci, d->kh, d->kw, d->k, o,
                                                            c0, 1 / d->kw, 1 % d->kw) - off;
            int8_t *dst = p->w + o * p->kp + c0;
            if (rn_cancelled(c)) {   /* up to 64 MiB of weights, in one depthwise kernel too */
                return false;
            }
            for (uint32_t t = 0; t < taps; t++) {
                copy_seg((uint8_t *)dst + (size_t)t * d->ci, raw + off + t * step, gw);
            }
        }
        p->sum[o] = rn_sum_s8(p->w + o * p->kp, (size_t)taps * d->ci);
    }
    for (size_t o = p->nk; o < p->nout_pad; o++) {
        p->sum[o] = 0;
    }
    return true;
}

bool rn_fetch_bias(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                   int32_t **bias, struct rn_task_outcome *out)
{
    uint8_t *raw;
    *bias = NULL;
    if (!(d->bs.on && d->bs.alu && d->bs.alu_mem)) {
        return true;
    }
    raw = rn_scratch(c, RN_BUF_ACC, (size_t)d->bias_entries * 4);
    *bias = rn_scratch(c, RN_BUF_BIAS, (size_t)d->bias_entries * 4);
    if (!raw || !*bias) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (!dma_read(c, m, d->bias_addr + d->dma_base, raw, d->bias_entries * 4u, out)) {
        return false;
    }
    for (uint32_t i = 0; i < d->bias_entries; i++) {
        (*bias)[i] = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                               (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
    }
    return true;
}

/* ERDMA operand surfaces [j][wo*ho*16] (Q9). */
static bool fetch_ew(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                     int8_t **ew, struct rn_task_outcome *out)
{
    size_t surf = (size_t)d->wo * d->ho * 16, nsurf = (d->co + 15) / 16;
    *ew = NULL;
    if (!d->ew_operand || d->ew_from_regs || d->ew_bytes != 1 || d->ew_per_channel) {
        return true;   /* the wide forms: rn_fetch_ew_wide() */
    }
    *ew = rn_scratch(c, RN_BUF_EW, surf * nsurf);
    if (!*ew) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (uint32_t j = 0; j < nsurf; j++) {
        bool odd = d->ew_two_streams && (j & 1);
        uint32_t base = d->ew_two_streams && !odd ? d->ew_src : d->ew_base;
        uint32_t notch = odd ? d->ew_notch_ew : d->ew_notch_src;
        uint64_t off = rn_ew_offset(d->ew_two_streams, j, surf, notch, d->ew_surf_stride);
        if (!dma_read(c, m, (uint32_t)(base + d->dma_base + off), *ew + j * surf, surf, out)) {
            return false;
        }
    }
    return true;
}

/* Channels per 16-byte output atom. */
#define C2O(d) rn_c2o(d)
/* 16-byte output surfaces the task writes. */
#define NSURF(d) (((d)->co + C2O(d) - 1) / C2O(d))

/* Output element (o, y, x) of the task's surface buffer: C2O channels of out_bytes per atom. */
static uint8_t *out_at(int8_t *obuf, const struct rn_conv *d, uint32_t o, uint32_t y, uint32_t x)
{
    return rn_obuf_at(obuf, d, o, (size_t)y * d->wo + x);
}

#define CO16(d) (((size_t)(d)->co_calc + 15) & ~(size_t)15)
#define CO16_OF(d) ((uint32_t)CO16(d))

/* Per-task DPU state: the per-channel ALU operand and whether the vector fast path applies. */
struct dpu_ctx {
    const struct rn_conv *d;
    const int32_t *ew32;        /* EW operands [channel][pixel] in the wide forms, or NULL */
    size_t npix;
    int32_t *bias;              /* co entries: BRDMA bias, the register operand, or 0 */
    bool fast;
    struct rn_dpu_fast f;
    /* the CACC of a raw-accumulator task: [pixel][channel % 32] (quirk chain-int-acc, Q15) */
    int32_t *cacc, *cacc_prev;
    uint32_t prev_pixels;
};

/*
 * Record this task's sums as the CACC holds them, adding the previous task's when chained;
 * returns them in sums (CO16 entries).
 */
static const int32_t *cacc_pass(const struct dpu_ctx *k, const int32_t *acc, size_t pix,
                                int32_t *sums)
{
    const struct rn_conv *d = k->d;
    for (uint32_t o = 0; o < CO16_OF(d); o++) {
        int64_t v = acc[o];
        if (o < d->co_calc && k->cacc_prev && pix < k->prev_pixels) {
            v = rn_sat32(v + k->cacc_prev[pix * 32 + o % 32]);
        }
        sums[o] = (int32_t)v;
        if (o < d->co_calc) {
            k->cacc[pix * 32 + o % 32] = (int32_t)v;
        }
    }
    return sums;
}

static bool shift_ok(uint32_t s)
{
    return s >= 1 && s <= 62;
}


/* bias_buf holds CO16 entries: whole atoms, so the vector path never reads past it. */
static void dpu_setup(struct dpu_ctx *k, const struct rn_conv *d, const int32_t *bias_mem,
                      int32_t *bias_buf)
{
    bool alu = d->bs.on && d->bs.alu;
    k->d = d;
    k->ew32 = NULL;
    k->npix = (size_t)d->wo * d->ho;
    k->cacc = k->cacc_prev = NULL;
    k->prev_pixels = 0;
    k->bias = bias_buf;
    for (uint32_t o = 0; o < CO16(d); o++) {
        bias_buf[o] = !alu || o >= d->co_calc ? 0 : d->bs.alu_mem ? bias_mem[o] : d->bs.operand;
    }
    k->fast = d->out_bytes == 1 && d->bs.on && !d->bs.sub && !d->bs.mul && !d->ew_mul &&
              (!d->ew_operand || (!d->ew_from_regs && d->ew_bytes == 1 && !d->ew_per_channel)) &&
              (!d->ew_operand || d->ew_algo == RN_EW_ADD) && !d->bs.relu && !d->bn.on && d->trunc <= 62 &&
              !(d->out_shift >> 30) && shift_ok(d->out_shift & 0xFFF) &&
              (!d->ew_on || (d->ew_operand && d->ew_algo == 2 && d->ew_cvt && d->ew_add_first &&
                             !d->ew_half_up && !d->ew_relu && shift_ok(d->ew_shift) &&
                             d->ew_offset > -(1 << 30) && d->ew_offset < (1 << 30)));
    k->f.ow_op = d->cpend ? (int16_t)(d->ow_op & 0xFFFF) : 0;
    k->f.trunc = d->trunc;
    k->f.trunc_half_up = d->trunc_half_up;
    k->f.ew = d->ew_on;
    k->f.ew_offset = d->ew_offset;
    k->f.ew_scale = d->ew_scale;
    k->f.ew_shift = d->ew_shift;
    k->f.out_scale = (int16_t)(d->out_scale & 0xFFFF);
    k->f.out_offset = (int32_t)d->out_offset;
    k->f.out_shift = d->out_shift & 0xFFF;
    /* |sum of in * w| <= 2^14 K and |window sum| <= 2^7 K for K int8 products per lane */
    uint64_t kk = (uint64_t)d->kh * d->kw * (d->dw ? 1 : d->ci), bmax = 0;
    for (uint32_t o = 0; o < CO16(d); o++) {
        uint64_t b = bias_buf[o] < 0 ? (uint64_t)-(int64_t)bias_buf[o] : (uint64_t)bias_buf[o];
        bmax = b > bmax ? b : bmax;
    }
    uint64_t ow = (uint64_t)(k->f.ow_op < 0 ? -k->f.ow_op : k->f.ow_op);
    k->f.fits32 = !d->raw_acc && kk * ((1u << 14) + 128u * ow) + bmax < (1ull << 31);
}

/*
 * DPU for one output pixel: MAC sums acc[o] and window sums wsum[o] for o < CO16 (lanes past
 * co_calc are scratch: write_output() overwrites them with OFFSET_PEND). tmp: CO16 entries of
 * the caller's, for a raw-accumulator task.
 */
static void dpu_pixel(const struct dpu_ctx *k, const int32_t *acc, const int32_t *wsum,
                      size_t pix, int8_t *obuf, const int8_t *ew, int32_t *tmp)
{
    static const int8_t no_ew[16];
    const struct rn_conv *d = k->d;
    size_t surf = (size_t)d->wo * d->ho * 16;
    if (k->cacc) {
        acc = cacc_pass(k, acc, pix, tmp);
    }
    if (k->fast) {   /* every atom: whole 16-lane ones (CO16) */
        rn_dpu_fast_atoms(&k->f, acc, k->bias, wsum, ew ? ew + pix * 16 : no_ew, ew ? surf : 0,
                          obuf + pix * 16, surf, CO16(d) / 16);
        return;
    }
    for (uint32_t o0 = 0; o0 < d->co_calc; o0 += 16) {
        size_t n = d->co_calc - o0 < 16 ? d->co_calc - o0 : 16, at = o0 / 16 * surf + pix * 16;
        const int8_t *e = ew ? ew + at : NULL;
        for (size_t l = 0; l < n; l++) {
            int64_t ev = k->ew32 ? k->ew32[(o0 + l) * k->npix + pix] : e ? e[l] : 0;
            int64_t r = rn_dpu_value(d, acc[o0 + l], wsum[o0 + l], k->bias[o0 + l],
                                     k->ew32 || e ? &ev : NULL);
            rn_out_store(out_at(obuf, d, o0 + l, pix / d->wo, pix % d->wo), r, d->out_prec);
        }
    }
}

/* What every part of a task's rows reads (threads.c); only obuf and the CACC are written. */
struct rows {
    const struct rn_conv *d;
    const struct tile *t;
    const struct wpack *p;
    const struct dpu_ctx *k;
    const int8_t *ew, *w;          /* w: the GEMM's packed weights */
    const int16_t *dwf;            /* depthwise weights with CPEND folded in (rn_dw_fold) */
    const int32_t *wsumf;          /* conv: the folded rows' weight sums (rn_gemm_pack_fold) */
    int8_t *obuf;
    struct rn_core *c;
};

/* The part's per-pixel DPU temporary of a raw-accumulator task (RN_BUF_CHAIN), else NULL. */
static int32_t *cacc_tmp(const struct rows *r, struct rn_part *part, bool *ok)
{
    int32_t *tmp = NULL;
    if (r->k->cacc) {
        tmp = rn_part_scratch(part, RN_BUF_CHAIN, CO16(r->d) * sizeof(int32_t));
        *ok = *ok && tmp;
    }
    return tmp;
}

/*
 * Output pixels a GEMM call takes: RN_CANCEL_BLOCK, fewer when their MACs pass 2^28 (a few ms),
 * so that a cancel is seen between calls; a multiple of the kernels' 4-pixel step.
 */
static uint32_t gemm_block(const struct wpack *p)
{
    uint64_t n = (1ull << 28) / ((uint64_t)p->nout_pad * p->kp) & ~3ull;
    return n < 4 ? 4 : n > RN_CANCEL_BLOCK ? RN_CANCEL_BLOCK : (uint32_t)n;
}

/*
 * Output pixels y0 * wo .. y1 * wo in GEMM blocks that run on across output rows (a 10-pixel
 * row no longer makes a 12-pixel call of three 4-pixel steps).
 */
static void conv_part(void *arg, struct rn_part *part, uint32_t y0, uint32_t y1)
{
    const struct rows *r = arg;
    const struct rn_conv *d = r->d;
    const struct tile *t = r->t;
    const struct wpack *p = r->p;
    size_t seg = (size_t)d->kw * d->ci, taps_ci = (size_t)d->kh * seg;
    uint32_t blk = gemm_block(p), nk = p->nk < d->co_calc ? p->nk : d->co_calc;
    uint8_t *patch = rn_part_scratch(part, RN_BUF_PATCH, (size_t)blk * p->kp);
    int32_t *acc = rn_part_scratch(part, RN_BUF_ACC, (size_t)blk * p->nout_pad * sizeof(int32_t));
    int32_t *fix = rn_part_scratch(part, RN_BUF_WIDE, (CO16(d) * 2 + blk) * sizeof(int32_t));
    bool ok = patch && acc && fix;
    int32_t *tmp = cacc_tmp(r, part, &ok), *wsum = fix + CO16(d), *wins = wsum + CO16(d);
    if (!ok) {
        return;
    }
    memset(fix, 0, CO16(d) * 2 * sizeof(int32_t));
    memset(patch, 0, (size_t)blk * p->kp);
    /* a 1x1, stride-1 conv over whole RN_KP_ALIGN-byte channel rows reads its patch in place */
    bool direct = d->kh == 1 && d->kw == 1 && d->sx == 1 && d->sy == 1 && p->kp == d->ci &&
                  t->wp == d->wo;
    size_t end = (size_t)y1 * d->wo;
    for (size_t p0 = (size_t)y0 * d->wo; p0 < end; p0 += blk) {
        uint32_t n = end - p0 < blk ? (uint32_t)(end - p0) : blk;
        const uint8_t *rows = patch;
        if (rn_cancelled(r->c)) {
            return;
        }
        if (direct) {
            rows = t->px + p0 * d->ci;
        } else {
            for (uint32_t i = 0; i < n; i++) {
                size_t y = (p0 + i) / d->wo, x = (p0 + i) % d->wo;
                for (uint32_t ky = 0; ky < d->kh; ky++) {
                    const uint8_t *src = t->px + ((y * d->sy + ky) * t->wp + x * d->sx) * d->ci;
                    copy_seg(patch + i * p->kp + ky * seg, src, seg);
                }
            }
        }
        rn_gemm_u8s8(rows, n, r->w, p->nout_pad, p->kp, acc);
        if (r->k->fast && !r->k->cacc) {   /* the block's DPU in one call */
            size_t surf = (size_t)d->wo * d->ho * 16;
            for (uint32_t i = 0; i < n; i++) {   /* folded: the GEMM's sums hold CPEND */
                wins[i] = r->wsumf ? 0 : (int32_t)rn_sum_u8(rows + i * p->kp, taps_ci) -
                                             128 * (int32_t)taps_ci;
            }
            rn_dpu_conv(&r->k->f, acc, p->nout_pad, r->wsumf ? r->wsumf : p->sum, r->k->bias, wins,
                        r->ew ? r->ew + p0 * 16 : NULL, surf, r->obuf + p0 * 16, surf,
                        CO16(d) / 16, n);
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            int32_t s = (int32_t)rn_sum_u8(rows + i * p->kp, taps_ci) - 128 * (int32_t)taps_ci;
            rn_conv_fix(acc + (size_t)i * p->nout_pad, p->sum, nk, d->co_calc, s, fix, wsum);
            dpu_pixel(r->k, fix, wsum, p0 + i, r->obuf, r->ew, tmp);
        }
    }
}

static void dw_part(void *arg, struct rn_part *part, uint32_t y0, uint32_t y1)
{
    const struct rows *r = arg;
    const struct rn_conv *d = r->d;
    const struct tile *t = r->t;
    /* channels >= DATAIN_CHANNEL have no input or weights: zero sums (Q11) */
    uint32_t cc = d->ci < d->co_calc ? d->ci : d->co_calc, stride = (uint32_t)CO16(d);
    size_t bytes = (size_t)RN_CANCEL_BLOCK * stride * sizeof(int32_t);
    int32_t *acc = rn_part_scratch(part, RN_BUF_ACC, bytes);
    int32_t *sum = rn_part_scratch(part, RN_BUF_PATCH, bytes);
    bool ok = acc && sum;
    int32_t *tmp = cacc_tmp(r, part, &ok);
    if (!ok) {
        return;
    }
    if (r->dwf) {   /* lanes past cc stay 0; zero weight and window sums: CPEND is folded in */
        size_t surf = (size_t)d->wo * d->ho * 16;
        memset(acc, 0, bytes);
        memset(sum, 0, (size_t)(stride > RN_CANCEL_BLOCK ? stride : RN_CANCEL_BLOCK) * 4);
        for (uint32_t y = y0; y < y1; y++) {
            for (uint32_t x0 = 0; x0 < d->wo; x0 += RN_CANCEL_BLOCK) {
                uint32_t n = d->wo - x0 < RN_CANCEL_BLOCK ? d->wo - x0 : RN_CANCEL_BLOCK;
                size_t pix = (size_t)y * d->wo + x0;
                if (rn_cancelled(r->c)) {
                    return;
                }
                rn_dw_fold(t->px + ((size_t)y * d->sy * t->wp + (size_t)x0 * d->sx) * d->ci,
                           (size_t)d->sx * d->ci, (size_t)t->wp * d->ci, d->ci, d->kh, d->kw,
                           r->dwf, acc, stride, cc, n);
                rn_dpu_conv(&r->k->f, acc, stride, sum, r->k->bias, sum,
                            r->ew ? r->ew + pix * 16 : NULL, surf, r->obuf + pix * 16, surf,
                            stride / 16, n);
            }
        }
        return;
    }
    for (uint32_t y = y0; y < y1; y++) {
        for (uint32_t x0 = 0; x0 < d->wo; x0 += RN_CANCEL_BLOCK) {
            uint32_t n = d->wo - x0 < RN_CANCEL_BLOCK ? d->wo - x0 : RN_CANCEL_BLOCK;
            if (rn_cancelled(r->c)) {
                return;
            }
            memset(acc, 0, (size_t)n * stride * sizeof(int32_t));
            memset(sum, 0, (size_t)n * stride * sizeof(int32_t));
            for (uint32_t i = 0; i < n; i++) {
                const uint8_t *src =
                    t->px + ((size_t)y * d->sy * t->wp + (size_t)(x0 + i) * d->sx) * d->ci;
                rn_dw_pixel(src, (size_t)t->wp * d->ci, d->ci, d->kh, d->kw, r->p->w, d->ci,
                            acc + (size_t)i * stride, sum + (size_t)i * stride, cc);
            }
            for (uint32_t i = 0; i < n; i++) {
                dpu_pixel(r->k, acc + (size_t)i * stride, sum + (size_t)i * stride,
                          (size_t)y * d->wo + x0 + i, r->obuf, r->ew, tmp);
            }
        }
    }
}

/*
 * May CPEND fold into int16 weights (rn_gemm_pack_fold, rn_dw_fold)? The DPU fast path on the
 * task's one sum acc + ow_op * wsum, exact in int32 by fits32; w + ow_op must fit int16.
 */
static bool can_fold(const struct dpu_ctx *k)
{
    return k->fast && k->f.fits32 && !k->cacc && k->f.ow_op >= -32640 && k->f.ow_op <= 32639;
}

/* The task's output rows, over the core's threads (c->threads; the bytes do not depend on it). */
static void compute_rows(struct rn_core *c, const struct rn_conv *d, const struct tile *t,
                         const struct wpack *p, const struct dpu_ctx *k, const int8_t *ew,
                         int8_t *obuf, struct rn_task_outcome *out)
{
    struct rows r = { .d = d, .t = t, .p = p, .k = k, .ew = ew, .obuf = obuf, .c = c };
    if (!d->dw) {
        int8_t *w = rn_scratch(c, RN_BUF_GEMMW, rn_gemm_packed_size(p->nout_pad, p->kp));
        if (!w) {
            out->error |= RN_ERR_DMA_READ;
            return;
        }
        r.w = w;
        size_t kreal = (size_t)d->kh * d->kw * d->ci;
        int32_t *wsumf = can_fold(k) ? rn_scratch(c, RN_BUF_FOLD, p->nout_pad * 4) : NULL;
        /* CPEND in the weights: no window sums */
        if (wsumf && rn_gemm_pack_fold(p->w, p->nout_pad, p->kp, kreal, k->f.ow_op, w)) {
            for (size_t o = 0; o < p->nout_pad; o++) {
                wsumf[o] = p->sum[o] + k->f.ow_op * (int32_t)kreal;
            }
            r.wsumf = wsumf;
        } else {
            rn_gemm_pack(p->w, p->nout_pad, p->kp, w);
        }
    } else if (can_fold(k) && rn_dw_fold_available()) {
        size_t taps = (size_t)d->kh * d->kw, cc = d->ci < d->co_calc ? d->ci : d->co_calc;
        int16_t *f = rn_scratch(c, RN_BUF_GEMMW, rn_dw_fold_packed_size(taps, cc) * 2);
        if (f) {   /* else (over the scratch limit) the plain depthwise path */
            rn_dw_fold_pack(p->w, d->ci, taps, cc, k->f.ow_op, f);
            r.dwf = f;
        }
    }
    out->error |= rn_par_rows(c, d->ho, d->dw ? dw_part : conv_part, &r);
}

/* The first len bytes of an output surface at addr: rows of Wo atoms, NOTCH_ADDR_0 atoms apart. */
static bool write_surface(const struct rn_mem *m, const struct rn_conv *d, uint32_t addr,
                          const int8_t *src, size_t len)
{
    size_t row = (size_t)d->wo * 16;
    if (!d->notch) {
        return !m->write(m->opaque, addr, src, len);
    }
    for (size_t at = 0, y = 0; at < len; at += row, y++) {
        size_t n = len - at < row ? len - at : row;
        if (m->write(m->opaque, (uint32_t)(addr + (uint64_t)y * (d->wo + d->notch) * 16),
                     src + at, n)) {
            return false;
        }
    }
    return true;
}

/*
 * WDMA: whole 16-byte atoms per surface; channels past ORIG_CHANNEL carry OFFSET_PEND (Q11).
 * Once the first byte goes out the task is no longer cancelled: a re-run from the kick's
 * snapshot must not find its input half overwritten (an output over its own input).
 */
static void write_output(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                         int8_t *obuf, struct rn_task_outcome *out)
{
    size_t surf = (size_t)d->wo * d->ho * 16;
    uint32_t nsurf = NSURF(d), group_bytes = d->group_channels * d->out_bytes;
    uint32_t per_group = group_bytes / 16;
    for (uint32_t j = 0; j < nsurf; j++) {
        if (rn_cancelled(c)) {
            return;
        }
        /* one atom's pattern: lanes past CO_CALC carry OFFSET_PEND, gated lanes 0 (Q11, Q15) */
        uint8_t keep[16], fill[16] = { 0 };
        bool any = false;
        memset(keep, 0xFF, sizeof(keep));
        for (uint32_t l = 0; l < C2O(d); l++) {
            uint32_t o = j * C2O(d) + l;
            bool gated = (d->lane_zero >> (o % 16)) & 1;   /* MAC gating (Q15) */
            if (o < d->co_calc && !gated) {
                continue;
            }
            memset(keep + l * d->out_bytes, 0, d->out_bytes);
            if (!gated) {
                rn_extra_channel_store(fill + l * d->out_bytes, d->offset_pend, d->out_bytes);
            }
            any = true;
        }
        uint64_t k[2], f[2], v[2];
        memcpy(k, keep, 16), memcpy(f, fill, 16);
        uint8_t *px = (uint8_t *)obuf + j * surf;
        for (size_t i = 0; any && i < (size_t)d->wo * d->ho; i++, px += 16) {
            memcpy(v, px, 16);
            v[0] = (v[0] & k[0]) | f[0], v[1] = (v[1] & k[1]) | f[1];
            memcpy(px, v, 16);
        }
    }
    if (nsurf > per_group && d->surf_add != per_group * d->dst_surf_stride) {
        rn_logf(c, RN_LOG_UNIMP,
                "rknpu: SURFACE_ADD 0x%x with DST_SURF_STRIDE 0x%x: output layout unverified "
                "on hardware", d->surf_add, d->dst_surf_stride);
    }
    size_t budget = 1024;   /* a writer with the wrong SIZE_E stalls after 1024 bytes (Q15) */
    if (rn_cancelled(c)) {
        return;
    }
    out->wrote = true;
    for (uint32_t j = 0; j < nsurf; j++) {
        uint64_t off = rn_wdma_offset(j, group_bytes, d->surf_add, d->dst_surf_stride);
        size_t len = d->size_e_hang && surf > budget ? budget : surf;
        if (j % per_group >= d->surf_written) {
            continue;   /* SIZE_E below the writer's line (Q15) */
        }
        out->st.bytes_written += len;
        if (!write_surface(m, d, (uint32_t)(d->dst + d->dma_base + off), obuf + j * surf, len)) {
            out->error |= RN_ERR_DMA_WRITE;
            return;
        }
        budget -= d->size_e_hang ? len : 0;
        if (d->size_e_hang && !budget) {
            break;
        }
    }
    out->hang = d->size_e_hang;
}

static void fill_stats(const struct rn_conv *d, struct rn_task_stats *st)
{
    st->precision = d->prec;
    st->depthwise = d->dw;
    st->ew = d->ew_operand;
    st->in_w = d->wi;
    st->in_h = d->hi;
    st->in_c = d->ci;
    st->out_w = d->wo;
    st->out_h = d->ho;
    st->out_c = d->co;
    st->kw = d->kw;
    st->kh = d->kh;
    st->stride = d->sx;
    st->macs = (uint64_t)d->wo * d->ho * d->co_calc * d->kh * d->kw * (d->dw ? 1 : d->ci);
}

/* Buffers of a raw-accumulator task's CACC: this task's and, when chained, the previous one's. */
static bool cacc_setup(struct rn_core *c, const struct rn_conv *d, struct dpu_ctx *k,
                       struct rn_task_outcome *out)
{
    size_t pixels = (size_t)d->wo * d->ho;
    enum rn_buf cur = c->cacc_flip ? RN_BUF_CACC1 : RN_BUF_CACC0;
    enum rn_buf prev = c->cacc_flip ? RN_BUF_CACC0 : RN_BUF_CACC1;
    k->cacc = rn_scratch(c, cur, pixels * 32 * sizeof(int32_t));
    k->prev_pixels = d->cacc_chain ? c->cacc_pixels : 0;
    k->cacc_prev = k->prev_pixels ? rn_scratch(c, prev, (size_t)k->prev_pixels * 32 * 4) : NULL;
    if (!k->cacc || (k->prev_pixels && !k->cacc_prev)) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    memset(k->cacc, 0, pixels * 32 * sizeof(int32_t));
    return true;
}

void rn_conv_execute(struct rn_core *c, const struct rn_mem *mem, const struct rn_conv *d,
                     struct rn_task_outcome *out)
{
    struct tile t = { .hp = (d->ho - 1) * d->sy + d->kh, .wp = (d->wo - 1) * d->sx + d->kw };
    struct wpack p;
    struct dpu_ctx k;
    int32_t *bias, *bias_buf;
    int8_t *ew, *obuf;

    fill_stats(d, &out->st);
    if (d->prec != RN_CNA_INT8) {   /* the other precisions (Q19): cna.c, mac.c */
        obuf = rn_scratch(c, RN_BUF_OUT, (size_t)NSURF(d) * 16 * d->wo * d->ho);
        if (!obuf) {
            out->error |= RN_ERR_DMA_READ;
        } else if (rn_mac_wide(c, mem, d, obuf, out) && !out->error) {
            write_output(c, mem, d, obuf, out);
        }
        c->cacc_pixels = d->raw_acc && !out->error ? d->wo * d->ho : 0;
        c->cacc_flip ^= d->raw_acc;
        return;
    }
    if (!fetch_input(c, mem, d, &t, out) || !fetch_weights(c, mem, d, &p, out) ||
        !rn_fetch_bias(c, mem, d, &bias, out) || !fetch_ew(c, mem, d, &ew, out)) {
        return;
    }
    obuf = rn_scratch(c, RN_BUF_OUT, (size_t)NSURF(d) * 16 * d->wo * d->ho);
    bias_buf = rn_scratch(c, RN_BUF_OPERAND, CO16(d) * sizeof(int32_t));
    if (!obuf || !bias_buf) {
        out->error |= RN_ERR_DMA_READ;
        return;
    }
    dpu_setup(&k, d, bias, bias_buf);
    if (d->ew_operand && !ew) {
        int32_t *ew32 = rn_scratch(c, RN_BUF_EW32, (size_t)d->co_calc * k.npix * sizeof(int32_t));
        if (!ew32) {
            out->error |= RN_ERR_DMA_READ;
            return;
        }
        if (!rn_fetch_ew_wide(c, mem, d, ew32, out)) {
            return;
        }
        k.ew32 = ew32;
    }
    if (d->raw_acc && !cacc_setup(c, d, &k, out)) {
        return;
    }
    compute_rows(c, d, &t, &p, &k, ew, obuf, out);
    if (!out->error) {
        write_output(c, mem, d, obuf, out);   /* it checks the cancel flag */
    }
    /* what the CACC holds for the next task of the kick */
    c->cacc_pixels = d->raw_acc && !out->error ? d->wo * d->ho : 0;
    c->cacc_flip ^= d->raw_acc;
}

void rn_pipeline_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                     struct rn_task_outcome *out)
{
    const uint32_t conv = RN_OPEN_CNA | RN_OPEN_CORE | RN_OPEN_DPU;
    struct rn_conv d;
    if (op_en & (RN_OPEN_PPU | RN_OPEN_PPU_RDMA)) {   /* pooling, or its refusal (ppu.c, Q16) */
        rn_ppu_run(c, mem, op_en, out);
        return;
    }
    if ((op_en & RN_OPEN_DPU) && !(op_en & (RN_OPEN_CNA | RN_OPEN_CORE))) {
        rn_flying_run(c, mem, op_en, out);   /* DPU-only: main data from the MRDMA (Q18) */
        return;
    }
    if ((op_en & conv) != conv) {
        rn_logf(c, (op_en & (RN_OPEN_PPU | RN_OPEN_PPU_RDMA | RN_OPEN_DPU)) ? RN_LOG_UNIMP
                                                                             : RN_LOG_GUEST_ERROR,
                "rknpu: op_en 0x%x: not a convolution (CNA+CORE+DPU), a DPU-only task or a "
                "pool from memory (PPU+PPU_RDMA): DPU->PPU flying and partial pipelines are not "
                "modelled", op_en);
        out->error |= RN_ERR_DMA_READ;
        return;
    }
    if (rn_conv_decode(c, op_en, &d, out)) {
        rn_conv_execute(c, mem, &d, out);
    }
}
