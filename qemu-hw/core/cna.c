/*
 * CNA fetch of the precisions other than int8 (HARDWARE-UNKNOWNS Q19): int4, int16, fp16, bf16
 * and tf32. A 16-byte atom holds C2 = 128 / bits channels, so channel c of a pixel sits at bit
 * c·bits of the pixel's atoms laid end to end (int4: even channels in the low nibble). The
 * feature goes through the CBUF quirks of Q15 as bytes, the input converter (integers only), and
 * the pad; the weights are read in their tiles. Elements go to the MAC as int32: integers as
 * their values, floats as their raw bits.
 */
#include <string.h>

#include "conv.h"

/* Element i of a little-endian stream of `bits`-bit elements, raw (zero-extended). */
static uint32_t raw_elem(const uint8_t *p, uint64_t i, uint32_t bits)
{
    switch (bits) {
    case 4:
        return (p[i / 2] >> (4 * (i & 1))) & 0xF;
    case 8:
        return p[i];
    case 16:
        return (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
    default:
        return (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    }
}

/*
 * Elements i0 .. i0 + n - 1 of such a stream into dst: integers as their signed values, floats
 * (sign false) as raw bits. One loop per element size: the runs are a pixel's channels or a
 * weight group's, and the element-by-element path costs more than the MAC in a matmul.
 */
RN_VECTORISE static void unpack(const uint8_t *p, uint64_t i0, size_t n, uint32_t bits,
                                bool sign, int32_t *dst)
{
    size_t i = 0;
    if (bits == 4) {
        for (; i < n; i++) {
            uint32_t r = (p[(i0 + i) / 2] >> (4 * ((i0 + i) & 1))) & 0xF;
            dst[i] = sign ? (int32_t)(r ^ 8) - 8 : (int32_t)r;
        }
    } else if (bits == 8) {
        for (p += i0; i < n; i++) {
            dst[i] = sign ? (int8_t)p[i] : p[i];
        }
    } else if (bits == 16) {
        for (p += 2 * i0; i < n; i++) {
            uint32_t r = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
            dst[i] = sign ? (int16_t)r : (int32_t)r;
        }
    } else {
        for (p += 4 * i0; i < n; i++) {
            dst[i] = (int32_t)((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                               (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24);
        }
    }
}

/* An integer element's signed value; floats stay raw bits. */
static int32_t signed_elem(uint32_t raw, uint32_t bits)
{
    return bits == 4 ? (int32_t)(raw ^ 8) - 8 : bits == 8 ? (int8_t)raw
         : bits == 16 ? (int16_t)raw : (int32_t)raw;
}

/* Channel ch of the pixel whose channel bytes start at px, as the MAC gets it (Q6 for integers). */
static int32_t feature_elem(const struct rn_conv *d, const uint8_t *px, uint32_t ch)
{
    uint32_t raw = raw_elem(px, ch, d->p.bits);
    if (!d->p.fp && d->cvt_on && ((d->cvt_en >> (ch % 16)) & 1)) {
        int64_t x = d->cvt_signed ? signed_elem(raw, d->p.bits) : (int64_t)raw;
        return rn_cna_cvt_elem(x, d->p.bits, d->cvt_add_first, d->cvt_half_up, &d->cvt[ch % 4]);
    }
    return d->p.fp ? (int32_t)raw : signed_elem(raw, d->p.bits);
}

bool rn_cna_fetch_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                       int32_t *tile, uint32_t hp, uint32_t wp, struct rn_task_outcome *out)
{
    size_t cb = d->cbytes, nsurf = (cb + 15) / 16, n = (size_t)hp * wp * d->ci;
    uint32_t base = d->feat_addr + d->dma_base;
    int32_t pad = rn_pad_elem(d->pad_con1, d->prec);
    uint8_t *img = rn_scratch(c, RN_BUF_IMAGE, (size_t)d->wi * d->hi * cb);
    uint8_t *row = rn_scratch(c, RN_BUF_ROW, nsurf * d->wi * 16);
    uint8_t *px = rn_scratch(c, RN_BUF_PAD, cb + 16);

    if (!img || !row || !px) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        tile[i] = pad;
    }
    /* the pixels' channel bytes, [hi][wi][cb], as the feature DMA stores them: a row's
     * surfaces [s][wi][16] in one read when they follow each other (row-major matmuls: 16-byte
     * surfaces, a read each otherwise) */
    bool joined = d->surf_pitch == (int64_t)d->wi * 16;
    for (uint32_t y = 0; y < d->hi; y++) {
        for (size_t s = 0; s < nsurf; s += joined ? nsurf : 1) {
            uint32_t addr = (uint32_t)(base + (int64_t)s * d->surf_pitch +
                                       (int64_t)y * d->row_pitch);
            size_t len = (joined ? nsurf : 1) * d->wi * 16;
            out->st.bytes_read += len;
            if (!rn_dma_get(c, m, addr, row + s * d->wi * 16, len, out)) {
                return false;
            }
        }
        for (size_t s = 0; s < nsurf; s++) {
            size_t nb = cb - 16 * s < 16 ? cb - 16 * s : 16;
            for (uint32_t x = 0; x < d->wi; x++) {
                memcpy(img + ((size_t)y * d->wi + x) * cb + 16 * s,
                       row + (s * d->wi + x) * 16, nb);
            }
        }
    }
    for (uint32_t y = 0; y < d->hi && (uint64_t)y + d->pt < hp; y++) {
        for (uint32_t x = 0; x < d->wi && (uint64_t)x + d->pl < wp; x++) {
            const uint8_t *src = img + ((size_t)y * d->wi + x) * cb;
            /* the CBUF model goes a byte at a time: one row can take 100 ms */
            if (x % RN_CANCEL_BLOCK == 0 && rn_cancelled(c)) {
                return false;
            }
            int32_t *dst = tile + (((size_t)y + d->pt) * wp + x + d->pl) * d->ci;
            if (d->cbuf_remap) {   /* read back through the CBUF model (Q15), byte by byte */
                for (size_t b = 0; b < cb; b++) {
                    px[b] = rn_cbuf_byte(d, img, y, x, (uint32_t)b, 0);
                }
                src = px;
            }
            if (d->p.fp || !d->cvt_on) {
                unpack(src, 0, d->ci, d->p.bits, !d->p.fp, dst);
                continue;
            }
            for (uint32_t ch = 0; ch < d->ci; ch++) {
                dst[ch] = feature_elem(d, src, ch);
            }
        }
    }
    return true;
}

bool rn_cna_weights_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                         int32_t *w, uint32_t nk, struct rn_task_outcome *out)
{
    uint32_t taps = d->kh * d->kw;
    uint8_t *raw = rn_scratch(c, RN_BUF_WEIGHTS, d->wt_bytes);
    if (!raw) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    out->st.bytes_read += rn_weight_dma_bytes(REG(c, CNA_CBUF_CON0), d->wt_bytes);
    if (!rn_dma_get(c, m, d->wt_addr + d->dma_base, raw, d->wt_bytes, out)) {
        return false;
    }
    /* rn_weight_elem() walked in runs: channels c .. c + gw - 1 of one kernel group and tap */
    for (uint32_t o = 0; o < (d->dw ? 1 : nk); o++) {
        for (uint32_t t = 0; t < taps; t++) {
            int32_t *dst = w + ((size_t)o * taps + t) * d->ci;
            uint32_t kg = d->dw ? d->p.dw_group : d->p.kg;
            if (rn_cancelled(c)) {   /* a depthwise task is one kernel of up to 64 M elements */
                return false;
            }
            for (uint32_t ch = 0; ch < d->ci; ch += kg) {
                uint32_t gw = d->ci - ch < kg ? d->ci - ch : kg;
                uint64_t i = rn_weight_elem(&d->p, d->dw, d->ci, d->kh, d->kw, d->k, o, ch,
                                            t / d->kw, t % d->kw);
                unpack(raw, i, gw, d->p.bits, !d->p.fp, dst + ch);
            }
        }
    }
    return true;
}
