// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim bench: every MobileDet conv/depthwise layer, programmed as Mesa does, through the
 * core (rknpu-run --repeat, one thread unless --threads). Prints the host's CPU and the kernel
 * path that runs (RKNPU_ISA=avx2 etc. forces a lesser one), per-layer figures, totals per kind
 * and overall, the figures of the other blocks (benchops.c), and last `core-bench: N GMAC/s`.
 *
 * The layers come from the model file (a small reader of TFLite's FlatBuffer, below); each is
 * made into a job folder (qemu-hw/tools/JOB-FORMAT.md) the way Mesa 26's rocket driver programs
 * it: the 130 regcmd entries of a task (mesa-rocket-spec §2.2 order, §2.4 values), the tensors'
 * layouts (§3), the bias fold (§3.6), the output converter (§3.8) and the split into row bands
 * (§4); BOs bottom-up from IOVA 0 as rocket assigns them, one kick per task. This is the C twin of
 * sim-tests/rknpu/mesagen.py + mesatask.py (conv and depthwise, no fused add), and
 * sim-tests/test_rocketsim.py checks that both write the same jobs. The input bytes are random
 * (a fixed seed): the core's speed does not depend on them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/utsname.h>

#include <glib/gstdio.h>

#include "progs.h"
#include "regdb.h"
#include "rocketsim.h"

#define TASK_STRIDE 1088   /* 130 entries padded to 64 bytes */
#define CBUF_BANKS 12

/* ceil(a / b) for b > 0 (Python's -(-a // b)) */
static int64_t ceil_div(int64_t a, int64_t b)
{
    int64_t q = a / b, r = a % b;
    return q + (r != 0 && (r > 0) == (b > 0));
}

/* floor(a / b) for b > 0 (Python's a // b) */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b, r = a % b;
    return q - (r != 0 && (r < 0) != (b < 0));
}

static int64_t align(int64_t x, int64_t a)
{
    return ceil_div(x, a) * a;
}

/* ---- a TFLite model: the FlatBuffer wire format, the few tables a conv network needs ---- */

struct fb {
    const guint8 *buf;
    size_t len;
    gboolean bad;
};

static uint32_t rd32(struct fb *f, size_t at)
{
    if (at + 4 > f->len) {
        f->bad = TRUE;
        return 0;
    }
    return (uint32_t)f->buf[at] | (uint32_t)f->buf[at + 1] << 8 | (uint32_t)f->buf[at + 2] << 16 |
           (uint32_t)f->buf[at + 3] << 24;
}

static uint16_t rd16(struct fb *f, size_t at)
{
    if (at + 2 > f->len) {
        f->bad = TRUE;
        return 0;
    }
    return (uint16_t)(f->buf[at] | f->buf[at + 1] << 8);
}

/* The byte offset of field `field` in the table at pos, 0 when absent. */
static size_t fb_slot(struct fb *f, size_t pos, int field)
{
    size_t vt = pos - (size_t)(int64_t)(int32_t)rd32(f, pos);
    uint16_t vlen = rd16(f, vt);
    size_t entry = 4 + 2 * (size_t)field;
    return entry + 2 > vlen ? 0 : rd16(f, vt + entry);
}

static int64_t fb_int(struct fb *f, size_t pos, int field, int bytes, gboolean sign, int64_t dflt)
{
    size_t off = fb_slot(f, pos, field);
    if (!off) {
        return dflt;
    }
    size_t at = pos + off;
    if (at + (size_t)bytes > f->len) {
        f->bad = TRUE;
        return dflt;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t)f->buf[at + (size_t)i] << (8 * i);
    }
    if (sign && bytes < 8 && (v >> (8 * bytes - 1)) & 1) {
        v |= ~0ull << (8 * bytes);
    }
    return (int64_t)v;
}

/* Where an offset field points, 0 when absent. */
static size_t fb_deref(struct fb *f, size_t pos, int field)
{
    size_t off = fb_slot(f, pos, field);
    if (!off) {
        return 0;
    }
    size_t target = pos + off + rd32(f, pos + off);
    if (target + 4 > f->len) {
        f->bad = TRUE;
        return 0;
    }
    return target;
}

/* A vector field: its element 0 and count (count 0 when absent). */
static size_t fb_vector(struct fb *f, size_t pos, int field, uint32_t *n)
{
    size_t at = fb_deref(f, pos, field);
    *n = at ? rd32(f, at) : 0;
    return at + 4;
}

static size_t fb_table_at(struct fb *f, size_t vec, uint32_t k)
{
    size_t slot = vec + 4 * (size_t)k;
    return slot + rd32(f, slot);
}

/* schema.fbs field ids */
enum { MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { SUBGRAPH_TENSORS = 0, SUBGRAPH_OPERATORS = 3 };
enum { TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_BUFFER = 2, TENSOR_NAME = 3,
       TENSOR_QUANTIZATION = 4 };
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1, BUFFER_SIZE = 2 };
enum { OPERATOR_OPCODE_INDEX = 0, OPERATOR_INPUTS = 1, OPERATOR_OUTPUTS = 2,
       OPERATOR_BUILTIN_OPTIONS = 4 };
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_BUILTIN = 3 };
enum { QUANT_SCALE = 2, QUANT_ZERO_POINT = 3 };
enum { OP_CONV_2D = 3, OP_DEPTHWISE_CONV_2D = 4, TYPE_UINT8 = 3 };

struct tensor {
    int shape[4], dims;
    int type;
    const guint8 *data;      /* constant data, NULL when none */
    size_t data_len;
    int nscale;
    float scale;
    int64_t zero_point;
};

static void read_tensor(struct fb *f, size_t t, size_t buffers, uint32_t nbuf, struct tensor *out)
{
    uint32_t n;
    size_t v = fb_vector(f, t, TENSOR_SHAPE, &n);
    memset(out, 0, sizeof(*out));
    out->dims = (int)MIN(n, 4u);
    for (int i = 0; i < out->dims; i++) {
        out->shape[i] = (int)(int32_t)rd32(f, v + 4 * (size_t)i);
    }
    out->type = (int)fb_int(f, t, TENSOR_TYPE, 1, TRUE, 0);
    uint32_t b = (uint32_t)fb_int(f, t, TENSOR_BUFFER, 4, FALSE, 0);
    if (b < nbuf) {
        size_t bt = fb_table_at(f, buffers, b);
        uint64_t off = (uint64_t)fb_int(f, bt, BUFFER_OFFSET, 8, FALSE, 0);
        uint64_t size = (uint64_t)fb_int(f, bt, BUFFER_SIZE, 8, FALSE, 0);
        if (off > 1) {   /* models over 2 GiB keep data after the FlatBuffer */
            if (off + size <= f->len) {
                out->data = f->buf + off, out->data_len = size;
            }
        } else {
            size_t d = fb_vector(f, bt, BUFFER_DATA, &n);
            if (n && d + n <= f->len) {
                out->data = f->buf + d, out->data_len = n;
            }
        }
    }
    size_t q = fb_deref(f, t, TENSOR_QUANTIZATION);
    if (q) {
        size_t s = fb_vector(f, q, QUANT_SCALE, &n);
        out->nscale = (int)n;
        if (n) {
            uint32_t bits = rd32(f, s);
            memcpy(&out->scale, &bits, 4);
        }
        size_t z = fb_vector(f, q, QUANT_ZERO_POINT, &n);
        if (n && z + 8 <= f->len) {
            out->zero_point = (int64_t)((uint64_t)rd32(f, z) | (uint64_t)rd32(f, z + 4) << 32);
        }
    }
}

/* ---- the layers (sim-tests/rknpu/tflite.py conv_layers) ---- */

struct layer {
    gboolean dw;
    int h, w, c;             /* input */
    int oh, ow, oc;          /* output, as the model says */
    int k, s;
    int pads[4];             /* top, bottom, left, right */
    float s_in, s_w, s_out;
    int64_t zp_in, zp_w, zp_out;
    guint8 *weights;         /* conv [OC][K][K][C], depthwise [K][K][C] */
    int32_t *bias;           /* [OC] */
};

static void same_pads(int in, int k, int s, int *before, int *after)
{
    int out = (int)ceil_div(in, s);
    int total = MAX((out - 1) * s + k - in, 0);
    *before = total / 2;
    *after = total - total / 2;
}

static GArray *conv_layers(const char *path, GError **err)
{
    gsize len;
    g_autofree guint8 *buf = NULL;
    if (!g_file_get_contents(path, (char **)&buf, &len, err)) {
        return NULL;
    }
    struct fb f = { buf, len, FALSE };
    if (len < 8 || memcmp(buf + 4, "TFL3", 4)) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is not a TFLite model", path);
        return NULL;
    }
    GArray *out = g_array_new(FALSE, TRUE, sizeof(struct layer));
    size_t root = rd32(&f, 0);
    uint32_t ncodes, nbuf, nsub, nt, nops;
    size_t codes = fb_vector(&f, root, MODEL_OPERATOR_CODES, &ncodes);
    size_t buffers = fb_vector(&f, root, MODEL_BUFFERS, &nbuf);
    size_t subs = fb_vector(&f, root, MODEL_SUBGRAPHS, &nsub);
    if (!nsub) {
        f.bad = TRUE;
    }
    size_t sg = nsub ? fb_table_at(&f, subs, 0) : 0;
    size_t tensors = nsub ? fb_vector(&f, sg, SUBGRAPH_TENSORS, &nt) : 0;
    size_t ops = nsub ? fb_vector(&f, sg, SUBGRAPH_OPERATORS, &nops) : 0;
    for (uint32_t i = 0; nsub && i < nops && !f.bad; i++) {
        size_t o = fb_table_at(&f, ops, i);
        uint32_t ci = (uint32_t)fb_int(&f, o, OPERATOR_OPCODE_INDEX, 4, FALSE, 0);
        if (ci >= ncodes) {
            continue;
        }
        size_t oc = fb_table_at(&f, codes, ci);
        int64_t code = MAX(fb_int(&f, oc, OPCODE_DEPRECATED_BUILTIN, 1, TRUE, 0),
                           fb_int(&f, oc, OPCODE_BUILTIN, 4, TRUE, 0));
        if (code != OP_CONV_2D && code != OP_DEPTHWISE_CONV_2D) {
            continue;
        }
        uint32_t nin, nout;
        size_t ins = fb_vector(&f, o, OPERATOR_INPUTS, &nin);
        size_t outs = fb_vector(&f, o, OPERATOR_OUTPUTS, &nout);
        if (nin < 3 || nout < 1) {
            continue;
        }
        struct tensor t[4];
        uint32_t idx[4] = { rd32(&f, ins), rd32(&f, ins + 4), rd32(&f, ins + 8), rd32(&f, outs) };
        gboolean ok = TRUE;
        for (int j = 0; j < 4; j++) {
            ok &= idx[j] < nt;
            if (ok) {
                read_tensor(&f, fb_table_at(&f, tensors, idx[j]), buffers, nbuf, &t[j]);
            }
        }
        if (!ok || t[0].type != TYPE_UINT8 || t[1].nscale != 1 || t[0].dims != 4 ||
            t[1].dims != 4 || t[3].dims != 4 || !t[1].data || !t[2].data) {
            continue;
        }
        size_t opt = fb_deref(&f, o, OPERATOR_BUILTIN_OPTIONS);
        /* Conv2DOptions / DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2 */
        int padding = opt ? (int)fb_int(&f, opt, 0, 1, TRUE, 0) : 0;
        int stride_w = opt ? (int)fb_int(&f, opt, 1, 4, TRUE, 0) : 0;
        int stride_h = opt ? (int)fb_int(&f, opt, 2, 4, TRUE, 0) : 0;
        struct layer L = { 0 };
        L.h = t[0].shape[1], L.w = t[0].shape[2], L.c = t[0].shape[3];
        L.oh = t[3].shape[1], L.ow = t[3].shape[2], L.oc = t[3].shape[3];
        L.k = t[1].shape[1], L.s = stride_h;
        L.dw = code == OP_DEPTHWISE_CONV_2D && L.c > 1;
        if (padding == 0) {   /* SAME */
            same_pads(L.h, L.k, L.s, &L.pads[0], &L.pads[1]);
            same_pads(L.w, t[1].shape[2], stride_w, &L.pads[2], &L.pads[3]);
        }
        L.s_in = t[0].scale, L.zp_in = t[0].zero_point;
        L.s_w = t[1].scale, L.zp_w = t[1].zero_point;
        L.s_out = t[3].scale, L.zp_out = t[3].zero_point;
        int k0 = t[1].shape[0], k1 = t[1].shape[1], k2 = t[1].shape[2], k3 = t[1].shape[3];
        size_t nw = (size_t)k0 * k1 * k2 * k3;
        if (t[1].data_len < nw || t[2].data_len < 4 * (size_t)t[2].shape[0]) {
            continue;
        }
        L.weights = g_malloc(nw);
        if (code == OP_DEPTHWISE_CONV_2D && !L.dw) {
            /* depthwise over 1 channel: [1, kh, kw, M] -> conv [M, kh, kw, 1], as Mesa does */
            for (int m = 0; m < k3; m++) {
                for (int y = 0; y < k1; y++) {
                    for (int x = 0; x < k2; x++) {
                        L.weights[((size_t)m * k1 + y) * k2 + x] =
                            t[1].data[((size_t)y * k2 + x) * k3 + m];
                    }
                }
            }
        } else {
            memcpy(L.weights, t[1].data, nw);   /* conv as is; depthwise [1,K,K,C] = [K,K,C] */
        }
        int nb = t[2].shape[0];
        L.bias = g_new(int32_t, (gsize)nb);
        for (int j = 0; j < nb; j++) {
            L.bias[j] = (int32_t)((uint32_t)t[2].data[4 * j] | (uint32_t)t[2].data[4 * j + 1] << 8 |
                                  (uint32_t)t[2].data[4 * j + 2] << 16 |
                                  (uint32_t)t[2].data[4 * j + 3] << 24);
        }
        g_array_append_val(out, L);
    }
    if (f.bad) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: a malformed TFLite model",
                    path);
        g_array_unref(out);
        return NULL;
    }
    return out;
}

/* ---- Mesa's programming (sim-tests/rknpu/mesagen.py, mesatask.py) ---- */

static const uint32_t TRUNCATE_SCALES[] = {
    0x3a88323f, 0x3c0060de, 0x3c06022d, 0x3c1642e3, 0x3c1e3f51, 0x3c5c8aa8, 0x3c615e93,
    0x3c7326a2, 0x3c783013, 0x3d1748e6, 0x3d282992, 0x3d2e87ae, 0x3d77f5f6, 0x3a9a5956,
    0x3caebc56,
};

static uint32_t f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    return b;
}

struct geom {
    int h, w, c, k, oc, s, pt, pb, pl, pr, ho, wo, cal, ocal;
    gboolean one;
};

struct band {
    int top, rows, pad_top, pad_bottom, oh, data_bank, weight_bank;
};

static int ocal_of(int oc, gboolean dw)
{
    int v = (int)align(MAX(oc, 32), 32);
    if (dw) {
        v = (int)align(oc <= 32 ? v * 2 : v, 64);
    }
    return v;
}

static void geometry(const struct layer *L, struct geom *g)
{
    g->h = L->h, g->w = L->w, g->c = L->c;
    g->k = L->k;
    g->oc = L->dw ? L->c : L->oc;
    g->s = L->s;
    g->pt = L->pads[0], g->pb = L->pads[1], g->pl = L->pads[2], g->pr = L->pads[3];
    g->ho = (int)floor_div(g->h + g->pt + g->pb - g->k, g->s) + 1;
    g->wo = (int)floor_div(g->w + g->pl + g->pr - g->k, g->s) + 1;
    g->cal = (int)align(MAX(g->c, 16), 16);
    g->ocal = ocal_of(g->oc, L->dw);
    g->one = g->c == 1;
}

static int truncate_bits(const struct layer *L)
{
    uint32_t b = f32_bits(L->s_w);
    for (size_t i = 0; i < G_N_ELEMENTS(TRUNCATE_SCALES); i++) {
        if (TRUNCATE_SCALES[i] == b) {
            return 1;
        }
    }
    return 0;
}

static int64_t tensor_bo_size(int64_t h, int64_t w, int64_t c)
{
    return w * h * ceil_div(c, 16) * 2 * 16;
}

/* §3: the input as Mesa uploads it */
static GByteArray *input_bytes(const struct layer *L, const struct geom *g, const guint8 *x)
{
    GByteArray *out = g_byte_array_new();
    if (g->one) {
        int row = MAX(g->w, 16);
        g_byte_array_set_size(out, (guint)(g->h * row));
        memset(out->data, (int)(L->zp_in & 0xFF), out->len);
        for (int y = 0; y < g->h; y++) {
            memcpy(out->data + (size_t)y * row, x + (size_t)y * g->w, (size_t)g->w);
        }
        return out;
    }
    int surfaces = (int)ceil_div(g->c, 16);
    g_byte_array_set_size(out, (guint)((size_t)surfaces * g->h * g->w * 16));
    memset(out->data, (int)((L->zp_in - 128) & 0xFF), out->len);
    for (int y = 0; y < g->h; y++) {
        for (int xx = 0; xx < g->w; xx++) {
            for (int ch = 0; ch < g->c; ch++) {
                size_t at = (((size_t)(ch / 16) * g->h + y) * g->w + xx) * 16 + (size_t)(ch % 16);
                out->data[at] = (guint8)(x[((size_t)y * g->w + xx) * g->c + ch] - 128);
            }
        }
    }
    return out;
}

/* §3.5: Mesa's weight packing */
static GByteArray *weight_bytes(const struct layer *L, const struct geom *g)
{
    GByteArray *out = g_byte_array_new();
    int c = g->c, oc = g->oc, k = g->k;
    int ko = L->dw ? 1 : (int)align(oc, 2);
    int cmax = MAX(c, 16), grp = L->dw ? 64 : 32;
    guint8 zpb = (guint8)((L->zp_w - 0x80) & 0xFF);
    for (int oc1 = 0; oc1 < ceil_div(ko, 32); oc1++) {
        for (int ic1 = 0; ic1 < ceil_div(cmax, grp); ic1++) {
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    for (int oc2 = 0; oc2 < MIN(ko, 32); oc2++) {
                        int o = 32 * oc1 + oc2;
                        for (int ic2 = 0; ic2 < MIN(cmax, grp); ic2++) {
                            int ic = grp * ic1 + ic2;
                            guint8 b;
                            if (o >= align(oc, 2) && oc > 2) {
                                continue;
                            }
                            if (!L->dw && o >= oc) {
                                b = 0;
                            } else if (ic >= c) {
                                if (!(ic2 < 16 || c % 32 > 16)) {
                                    continue;
                                }
                                b = zpb;
                            } else {
                                int q = L->dw ? L->weights[((size_t)ky * k + kx) * c + ic]
                                              : L->weights[(((size_t)o * k + ky) * k + kx) * c +
                                                           ic];
                                b = (guint8)((q - 0x80) & 0xFF);
                            }
                            g_byte_array_append(out, &b, 1);
                        }
                    }
                }
            }
        }
    }
    return out;
}

/* §3.6: bias minus the input zero-point correction, over 2^truncate (C division) */
static GByteArray *bias_bytes(const struct layer *L, const struct geom *g)
{
    GByteArray *out = g_byte_array_new();
    int t = truncate_bits(L), k = g->k, c = g->c;
    for (int o = 0; o < g->oc; o++) {
        int64_t sum = 0;
        if (L->dw) {
            for (int i = 0; i < k * k; i++) {
                sum += L->weights[(size_t)i * c + o] - L->zp_w;
            }
        } else {
            for (size_t i = 0; i < (size_t)k * k * c; i++) {
                sum += L->weights[(size_t)o * k * k * c + i] - L->zp_w;
            }
        }
        int64_t v = (int64_t)L->bias[o] - (L->zp_in - 128) * sum;
        int32_t hw = (int32_t)(t ? v / (1 << t) : v);
        guint8 le[4] = { (guint8)hw, (guint8)(hw >> 8), (guint8)(hw >> 16), (guint8)(hw >> 24) };
        g_byte_array_append(out, le, 4);
    }
    return out;
}

/* §3.8: OUT_CVT scale and shift */
static void out_cvt(const struct layer *L, uint32_t *scale, int64_t *shift)
{
    volatile float m = L->s_in * L->s_w;
    m = m / L->s_out;
    uint32_t bits = f32_bits(m), e = bits >> 23, sc = ((bits >> 9) & 0x7FFF) + 1;
    if (sc < 0x4000) {
        sc |= 0x4000;
    }
    *scale = sc & 0xFFFF;
    *shift = 141 - (int64_t)e - truncate_bits(L);
}

/* §3.7 PAD_CON1, with Mesa's overrides (last one wins) */
static uint32_t pad_value(const struct layer *L, const struct geom *g)
{
    uint32_t v = (uint32_t)((L->zp_in - 0x80) & 0xFFFFFFFF);
    if (g->k >= 3 && L->zp_in == 0) {
        v = 0xFFFF8080;
    }
    if (L->dw && L->zp_in == 0x8B) {
        v = 0x0B0B;
    }
    return v;
}

static int entries_per_row(int w, int c)
{
    int a = (int)ceil_div(c, 16), full = a / 8, last = a % 8;
    return full * w + (last == 3 ? w : (int)ceil_div((int64_t)last * w, 8));
}

/* §4: row bands */
static GArray *split_tasks(const struct layer *L, const struct geom *g, gboolean *reuse)
{
    GArray *tasks = g_array_new(FALSE, TRUE, sizeof(struct band));
    int epr = entries_per_row(g->w, g->c);
    int64_t in_banks = ceil_div((int64_t)epr * g->h, 256);
    int64_t wbytes = (int64_t)g->k * g->k * g->c * (L->dw ? 1 : g->oc);
    int64_t wb = ceil_div(ceil_div(wbytes, 128), 256) + 1;
    int avail_in;
    if (wb + 1 < CBUF_BANKS) {
        *reuse = TRUE, avail_in = CBUF_BANKS - (int)wb;
    } else {
        *reuse = FALSE, avail_in = 7;
    }
    if (in_banks <= avail_in) {
        struct band b = { 0, g->h, g->pt, g->pb, g->ho, (int)in_banks,
                          CBUF_BANKS - (int)in_banks };
        g_array_append_val(tasks, b);
        return tasks;
    }
    int rows_per_task = 256 * avail_in / epr, start = 0, done = 0;
    while (start < g->h && done < g->ho) {
        gboolean first = tasks->len == 0;
        int rows = MIN(rows_per_task, g->h - start);
        gboolean last = start + rows >= g->h;
        int pt = first ? g->pt : 0, pb = last ? g->pb : 0;
        int oh = (int)floor_div(rows + pt + pb - g->k, g->s) + 1;
        if (oh <= 0) {
            break;
        }
        oh = MIN(oh, g->ho - done);
        struct band b = { start, rows, pt, pb, oh, avail_in, CBUF_BANKS - avail_in };
        g_array_append_val(tasks, b);
        done += oh;
        start = start + oh * g->s - pt;
    }
    return tasks;
}

/* regcmd target codes: block one-hot | 1 (mesa-rocket-spec §2.1) */
static uint64_t entry(uint32_t off, int64_t value)
{
    return rp_entry(off, (uint32_t)value);
}

#define MARKER (0x0041ull << 48)
#define OP_EN(blocks) (0x0081ull << 48 | (uint64_t)(blocks) << 16 | 0x0008)

/* The 130 entries of task i of n (mesatask.task_entries, no fused add). */
static int task_entries(const struct layer *L, const struct geom *g, const struct band *t,
                        const struct band *all, int i, int n, gboolean reuse,
                        const int64_t *iova, int64_t next_regcmd, uint64_t *e)
{
    gboolean dw = L->dw, one = g->one;
    int s = g->s, k = g->k, W = g->w, H = g->h;
    int ow = g->wo, oh = t->oh, oh_full = g->ho, rows_done = 0;
    for (int j = 0; j < i; j++) {
        rows_done += all[j].oh;
    }
    int64_t cbuf0 = t->data_bank | t->weight_bank << 4 | ((i > 0 && reuse) ? 1 << 13 : 0);
    int64_t con1 = (dw ? 3 : 0) | (one ? (1 << 30 | 1 << 29 | 8 << 12) : 0);
    int64_t line = one ? MAX(W, 16) : W * 4;
    int64_t surf = one ? line * (H - 1) : (int64_t)((double)line * ((double)H / 4 - 1));
    int64_t entries = ceil_div((int64_t)W * 2 * ceil_div(g->c, 16), 8);
    if (one) {
        entries = (int64_t)W * H;
    }
    if (W == 40 && g->c == 40) {
        entries = 40;
    }
    int64_t kernels = dw ? 1 : align(g->oc, 2);
    int64_t cvt[6];
    if (one) {
        int64_t trunc = 14;
        cvt[0] = (trunc | trunc << 6 | trunc << 12 | trunc << 18) << 4;
        cvt[1] = cvt[2] = cvt[3] = cvt[4] = 0x4000FF80;
        cvt[5] = 0xFFFF;
    } else {
        cvt[0] = 0xB;
        cvt[1] = cvt[2] = cvt[3] = cvt[4] = 0x00010000;
        cvt[5] = 0;
    }
    uint32_t scale;
    int64_t shift;
    out_cvt(L, &scale, &shift);
    int tbits = truncate_bits(L);
    int64_t surf_full = (int64_t)ow * oh_full;
    int64_t out_off = (int64_t)rows_done * ow * 16;
    int64_t in_off = (int64_t)t->top * (one ? line : (int64_t)W * 16);
    int64_t rdma_mode = 0x7810 + (dw ? 0x6 : 0);
    int64_t cal = g->cal, ocal = g->ocal;
    int at = 0;
#define E(reg, v) (e[at++] = entry(RN_##reg, (int64_t)(v)))
    E(CNA_CBUF_CON0, cbuf0), E(CNA_DCOMP_REGNUM, 0), E(CNA_DCOMP_CTRL, 0);
    E(CNA_CONV_CON1, con1), E(DPU_S_POINTER, 0xE), E(DPU_RDMA_S_POINTER, 0xE);
    E(CNA_CONV_CON1, con1), E(CNA_CONV_CON2, (50 + s + 1) << 4);
    E(CNA_CONV_CON3, s | s << 3);
    E(CNA_DATA_SIZE0, (int64_t)W << 16 | t->rows);
    E(CNA_DATA_SIZE1, (int64_t)(g->c - 1) << 16 | cal);
    E(CNA_DATA_SIZE2, ow), E(CNA_DATA_SIZE3, (int64_t)ow * oh);
    E(CNA_WEIGHT_SIZE0, k * k * cal * kernels), E(CNA_WEIGHT_SIZE1, k * k * cal);
    E(CNA_WEIGHT_SIZE2, (int64_t)k << 24 | (int64_t)k << 16 | kernels);
    E(CNA_CBUF_CON0, cbuf0), E(CNA_CBUF_CON1, entries);
    E(CNA_CVT_CON0, cvt[0]), E(CNA_CVT_CON1, cvt[1]), E(CNA_CVT_CON2, cvt[2]);
    E(CNA_CVT_CON3, cvt[3]), E(CNA_CVT_CON4, cvt[4]);
    E(CNA_FC_CON0, 0), E(CNA_FC_CON1, 0);
    E(CNA_PAD_CON0, t->pad_top | g->pl << 4);
    E(CNA_FEATURE_DATA_ADDR, iova[1] + in_off), E(CNA_FC_CON2, 0);
    E(CNA_DMA_CON0, 0x000F000F), E(CNA_DMA_CON1, line), E(CNA_DMA_CON2, surf & 0x0FFFFFFF);
    E(CNA_FC_DATA_SIZE0, (int64_t)W << 16 | t->rows), E(CNA_FC_DATA_SIZE1, cal);
    E(CNA_DCOMP_CTRL, 0), E(CNA_DCOMP_REGNUM, 0), E(CNA_DCOMP_ADDR0, iova[2]);
    for (int j = 0; j < 16; j++) {
        e[at++] = entry(RN_CNA_DCOMP_AMOUNT0 + 4 * (uint32_t)j, 0);
    }
    E(CNA_CVT_CON5, cvt[5]), E(CNA_PAD_CON1, pad_value(L, g));
    E(CORE_MISC_CFG, 1 | (dw ? 2 : 0));
    E(CORE_DATAOUT_SIZE_0, (int64_t)(oh - 1) << 16 | (ow - 1));
    E(CORE_DATAOUT_SIZE_1, ocal - 1), E(CORE_CLIP_TRUNCATE, tbits);
    E(CORE_UNDOC_3030, 0);
    E(DPU_FEATURE_MODE_CFG, dw ? 0x1FC : 0x1E4), E(DPU_DATA_FORMAT, 0);
    E(DPU_OFFSET_PEND, 0), E(DPU_DST_BASE_ADDR, iova[4] + out_off);
    E(DPU_DST_SURF_STRIDE, 16 * surf_full), E(DPU_DATA_CUBE_WIDTH, ow - 1);
    E(DPU_DATA_CUBE_HEIGHT, oh - 1), E(DPU_DATA_CUBE_NOTCH_ADDR, 0);
    E(DPU_DATA_CUBE_CHANNEL, (int64_t)(g->oc - 1) << 16 | (ocal - 1));
    E(DPU_BS_CFG, 0x20150), E(DPU_BS_ALU_CFG, 0), E(DPU_BS_MUL_CFG, 0);
    E(DPU_BS_RELUX_CMP_VALUE, 0), E(DPU_BS_OW_CFG, dw ? 0x36C : 0x124);
    E(DPU_BS_OW_OP, (0x80 - L->zp_w) & 0xFFFF);
    E(DPU_WDMA_SIZE_0, ocal - 1), E(DPU_WDMA_SIZE_1, (int64_t)(oh - 1) << 16 | (ow - 1));
    E(DPU_BN_CFG, 0x53), E(DPU_BN_ALU_CFG, 0), E(DPU_BN_MUL_CFG, 0);
    E(DPU_BN_RELUX_CMP_VALUE, 0);
    E(DPU_EW_CFG, 0x383);
    E(DPU_EW_CVT_OFFSET_VALUE, 0);
    E(DPU_EW_CVT_SCALE_VALUE, 1), E(DPU_EW_RELUX_CMP_VALUE, 0);
    E(DPU_OUT_CVT_OFFSET, (L->zp_out - 0x80) & 0xFFFFFFFF);
    E(DPU_OUT_CVT_SCALE, scale), E(DPU_OUT_CVT_SHIFT, shift);
    for (int j = 0; j < 8; j++) {
        e[at++] = entry(RN_DPU_EW_OP_VALUE_0 + 4 * (uint32_t)j, 0);
    }
    E(DPU_SURFACE_ADD, 16 * 2 * surf_full * (dw ? 2 : 1)), E(DPU_UNDOC_40C4, 0);
    E(DPU_LUT_ACCESS_CFG, 0), E(DPU_LUT_ACCESS_DATA, 0), E(DPU_LUT_CFG, 0);
    E(DPU_LUT_INFO, 0), E(DPU_LUT_LE_START, 0), E(DPU_LUT_LE_END, 0);
    E(DPU_LUT_LO_START, 0), E(DPU_LUT_LO_END, 0), E(DPU_LUT_LE_SLOPE_SCALE, 0);
    E(DPU_LUT_LE_SLOPE_SHIFT, 0), E(DPU_LUT_LO_SLOPE_SCALE, 0);
    E(DPU_LUT_LO_SLOPE_SHIFT, 0);
    E(DPU_RDMA_DATA_CUBE_WIDTH, ow - 1), E(DPU_RDMA_DATA_CUBE_HEIGHT, oh - 1);
    E(DPU_RDMA_DATA_CUBE_CHANNEL, ocal - 1);
    E(DPU_RDMA_SRC_BASE_ADDR, 0);
    E(DPU_RDMA_BRDMA_CFG, 2), E(DPU_RDMA_BS_BASE_ADDR, iova[3]);
    E(DPU_RDMA_NRDMA_CFG, 0), E(DPU_RDMA_BN_BASE_ADDR, 0);
    E(DPU_RDMA_ERDMA_CFG, 1);
    E(DPU_RDMA_EW_BASE_ADDR, 0);
    E(DPU_RDMA_EW_SURF_STRIDE, 0);
    E(DPU_RDMA_FEATURE_MODE_CFG, rdma_mode), E(DPU_RDMA_SRC_DMA_CFG, 0);
    E(DPU_RDMA_SURF_NOTCH, 0), E(DPU_RDMA_PAD_CFG, 0);
    E(DPU_RDMA_WEIGHT, 0x01010101), E(DPU_RDMA_EW_SURF_NOTCH, 0);
    g_assert(at == 126);
    e[at++] = n == 1 ? 0 : entry(RN_PC_BASE_ADDRESS, next_regcmd);
    E(PC_REGISTER_AMOUNTS, i < n - 1 ? 64 : 0);
    e[at++] = MARKER;
    e[at++] = OP_EN(0x1D);
#undef E
    return at;
}

/* The layer's job (mesatask.build_job) as a JOB-FORMAT.md folder. Returns the task count. */
static int write_job(const struct layer *L, const guint8 *x, const char *dir, GError **err)
{
    struct geom g;
    gboolean reuse;
    geometry(L, &g);
    g_autoptr(GArray) bands = split_tasks(L, &g, &reuse);
    int n = (int)bands->len;
    int64_t lay = 0, iova[5];   /* regcmd, in, wt, bias, out */
#define TAKE(size) (lay += align(MAX((size), 1), 4096), lay - align(MAX((size), 1), 4096))
    iova[0] = TAKE((int64_t)n * TASK_STRIDE);
    GByteArray *in = input_bytes(L, &g, x);
    iova[1] = TAKE(MAX((int64_t)in->len, tensor_bo_size(g.h, g.w, g.c)));
    GByteArray *wt = weight_bytes(L, &g);
    iova[2] = TAKE((int64_t)wt->len);
    GByteArray *bias = bias_bytes(L, &g);
    iova[3] = TAKE((int64_t)bias->len);
    int64_t out_size = tensor_bo_size(g.ho, g.wo, g.oc);
    iova[4] = TAKE(out_size);
#undef TAKE
    GByteArray *outb = g_byte_array_new();
    g_byte_array_set_size(outb, (guint)out_size);
    memset(outb->data, 0, outb->len);
    GByteArray *prog = g_byte_array_new();
    g_byte_array_set_size(prog, (guint)align((int64_t)n * TASK_STRIDE, 4096));
    memset(prog->data, 0, prog->len);
    for (int i = 0; i < n; i++) {
        uint64_t e[130];
        int64_t next = i < n - 1 ? iova[0] + (int64_t)(i + 1) * TASK_STRIDE : 0;
        int ne = task_entries(L, &g, &g_array_index(bands, struct band, i),
                              (struct band *)(void *)bands->data, i, n, reuse, iova, next, e);
        for (int j = 0; j < ne; j++) {
            for (int b = 0; b < 8; b++) {
                prog->data[(size_t)i * TASK_STRIDE + 8 * (size_t)j + (size_t)b] =
                    (guint8)(e[j] >> (8 * b));
            }
        }
    }
    struct rs_seg segs[5] = { { iova[0], prog }, { iova[1], in }, { iova[2], wt },
                              { iova[3], bias }, { iova[4], outb } };
    g_autofree struct rs_kick *kicks = g_new(struct rs_kick, bands->len);
    for (int i = 0; i < n; i++) {
        kicks[i] = (struct rs_kick){ iova[0] + (int64_t)i * TASK_STRIDE, 64 };
    }
    return rs_job_write(dir, segs, 5, kicks, n, iova[4], out_size, err) ? n : -1;
}

/* ---- the bench ---- */

/* The CPU and the kernel paths, as the core sees them (test-kernels --info). */
static char *host_info(const char *bdir)
{
    g_autofree char *exe = g_build_filename(bdir, "qemu-hw", "tests", "test-kernels", NULL);
    const char *argv[] = { exe, "--info", NULL };
    char *out = NULL;
    if (rs_file_exists(exe) && rs_run_capture(argv, &out, NULL) == 0) {
        return g_strstrip(out);
    }
    g_free(out);
    struct utsname u;
    return g_strdup_printf("cpu: %s\nkernels: (unknown: no test-kernels)",
                           uname(&u) == 0 ? u.machine : "unknown");
}

static char *shape3(int a, int b, int c)
{
    return g_strdup_printf("(%d, %d, %d)", a, b, c);
}

int cmd_bench(int argc, char **argv)
{
    char *build = NULL, *keep = NULL;
    double seconds = 0.2;
    int threads = 1;
    GOptionEntry entries[] = {
        { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds,
          "time per layer, its three runs together (default 0.2)", "S" },
        { "build", 0, 0, G_OPTION_ARG_FILENAME, &build,
          "the meson build folder whose rknpu-run to time (default: this program's)", "DIR" },
        { "threads", 0, 0, G_OPTION_ARG_INT, &threads,
          "host threads per task, 1 to 16 (default 1): with more, the figures show how a "
          "task's rows scale over this host's cores", "N" },
        { "write-jobs", 0, 0, G_OPTION_ARG_FILENAME, &keep,
          "only write the jobs: the layers' as DIR/LNN/, the others' as DIR/NAME/ (for "
          "rknpu-run, rknpu-dis)", "DIR" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx,
        "Every MobileDet conv/depthwise layer, programmed as Mesa does, through the core\n"
        "(rknpu-run --repeat, one thread unless --threads): per-layer figures; then matmuls of the other\n"
        "precisions, the LUT, an EW op and a PPU pool; last `core-bench: N GMAC/s`.\n"
        "Each figure is the fastest of three runs (other load only slows one).\n"
        "RKNPU_ISA=avx2 or generic forces a lesser kernel path than the host supports.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        rs_usage_error(ctx, "%s", err->message);
    }
    if (argc > 1) {
        rs_usage_error(ctx, "unexpected argument '%s'", argv[1]);
    }
    if (!(seconds > 0 && seconds <= 3600)) {
        rs_usage_error(ctx, "--seconds must be more than 0");
    }
    if (threads < 1 || threads > 16) {
        rs_usage_error(ctx, "--threads takes 1 to 16, not %d", threads);
    }
    rs_bench_threads = threads;
    /* --build as scripts/bench.py took it: relative to the source tree */
    g_autofree char *bdir = build ? g_canonicalize_filename(build, rs_root())
                                  : g_strdup(rs_builddir());
    g_autofree char *run = g_build_filename(bdir, "qemu-hw", "tools", "rknpu-run", NULL);
    if (!keep) {
        rs_need_file(run, "build it first: `ninja -C build` (or `make build`)");
    }

    g_autofree char *fetch = rs_path("scripts/fetch-models");
    const char *fargv[] = { fetch, NULL };
    g_autofree char *models = NULL, *ferr = NULL;
    int rc = rs_run_capture(fargv, &models, &ferr);
    if (rc != 0 || !*models) {
        g_autofree char *tail = rs_last_lines(ferr, 8, "    ");
        rs_fail(1, "the models are not available: scripts/fetch-models failed (status %d):\n%s",
                rc, tail);
    }
    g_autofree char *model = g_build_filename(models,
                                              "ssdlite_mobiledet_coco_qat_postprocess.tflite",
                                              NULL);
    g_autoptr(GArray) layers = conv_layers(model, &err);
    if (!layers) {
        rs_fail(1, "%s", err->message);
    }
    g_autofree char *tmp = keep ? NULL : g_dir_make_tmp("rocketsim-bench-XXXXXX", &err);
    if (!keep && !tmp) {
        rs_fail(1, "cannot make a temporary folder: %s", err->message);
    }
    const char *top = keep ? keep : tmp;
    g_autofree char *info = keep ? NULL : host_info(bdir);
    if (!keep) {
        printf("%s\n", info);
        if (g_getenv("RKNPU_ISA") && *g_getenv("RKNPU_ISA")) {
            printf("RKNPU_ISA=%s\n", g_getenv("RKNPU_ISA"));
        }
        printf("threads per task: %d%s\n", threads,
               threads > 1 ? " (core-bench is a 1-thread figure only without --threads)" : "");
        fflush(stdout);
    }
    double total_macs = 0, total_s = 0, kind_macs[2] = { 0 }, kind_s[2] = { 0 };
    int kind_order[2], nkinds = 0;
    uint64_t seed = 0;
    for (guint i = 0; i < layers->len; i++) {
        struct layer *L = &g_array_index(layers, struct layer, i);
        g_autofree char *name = g_strdup_printf("L%02u", i);
        g_autofree char *d = g_build_filename(top, name, NULL);
        size_t nx = (size_t)L->h * L->w * L->c;
        g_autofree guint8 *x = g_malloc(nx);
        for (size_t j = 0; j < nx; j++) {
            x[j] = (guint8)rs_splitmix(&seed);
        }
        if (g_mkdir_with_parents(d, 0755)) {
            rs_fail(1, "cannot create %s", d);
        }
        int tasks = write_job(L, x, d, &err);
        if (tasks < 0) {
            rs_fail(1, "cannot write the job of layer %u: %s", i, err->message);
        }
        g_autofree char *in = shape3(L->h, L->w, L->c), *out = shape3(L->oh, L->ow, L->oc);
        if (keep) {
            printf("L%02u %-4s %-16s -> %-16s k%d s%d tasks %d: %s\n", i, L->dw ? "dw" : "conv",
                   in, out, L->k, L->s, tasks, d);
            g_free(L->weights);
            g_free(L->bias);
            continue;
        }
        double macs, secs;   /* per run */
        if (!rs_bench_time(run, d, seconds, &macs, &secs)) {
            rs_fail(1, "rknpu-run gave no timing for layer %u (%s)", i, d);
        }
        total_macs += macs;
        total_s += secs;
        int kind = L->dw;   /* totals per kind, in the order the kinds first come */
        if (!(nkinds > 0 && kind_order[0] == kind) && !(nkinds > 1 && kind_order[1] == kind)) {
            kind_order[nkinds++] = kind;
        }
        kind_macs[kind] += macs;
        kind_s[kind] += secs;
        printf("L%02u %-4s %-16s -> %-16s k%d s%d tasks %d: %7.3f ms %6.2f GMAC/s\n", i,
               L->dw ? "dw" : "conv", in, out, L->k, L->s, tasks, secs * 1e3,
               macs / secs * 1e-9);
        fflush(stdout);
        rs_rm_tree(d);
        g_free(L->weights);
        g_free(L->bias);
    }
    if (keep) {
        rs_bench_ops(NULL, keep, 0, NULL);
        g_free(build);
        g_free(keep);
        return 0;
    }
    for (int j = 0; j < nkinds; j++) {
        int kind = kind_order[j];
        printf("MobileDet %s layers: %.3f GMAC in %.1f ms: %.2f GMAC/s\n", kind ? "dw" : "conv",
               kind_macs[kind] / 1e9, kind_s[kind] * 1e3, kind_macs[kind] / kind_s[kind] / 1e9);
    }
    printf("MobileDet conv+dw layers: %.3f GMAC in %.1f ms\n", total_macs / 1e9, total_s * 1e3);
    fflush(stdout);
    rs_bench_ops(run, tmp, seconds, info);
    rs_rm_tree(tmp);
    printf("core-bench: %.2f GMAC/s\n", total_macs / total_s / 1e9);
    g_free(build);
    g_free(keep);
    return 0;
}
