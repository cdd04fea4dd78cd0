/*
 * DPU-only ("flying") tasks (HARDWARE-UNKNOWNS Q18): op_en DPU (+ DPU_RDMA) without CNA/CORE.
 * The MRDMA reads the main data, which goes through BS, BN, EW (or the LUT) and OUT_CVT as a CACC
 * value would, in integer or — for fp16 — in fp32, and the WDMA writes one atom per group.
 */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "fp16.h"

#define R(name) REG(c, name)

struct flying {
    const struct rn_conv *d;
    struct rn_lut lut;
    bool lut_on;
    const int32_t *ew;          /* EW operand [channel][pixel] (integer values or raw bits) */
    const int32_t *bias;        /* BRDMA operand per channel (int32 or fp32 bits) */
};

/* Elements of a channel between cancel checks: about what RN_CANCEL_BLOCK pixels of a
 * convolution take. */
#define RN_CANCEL_ELEMS 4096u
/* Elements of an fp16 task from which its results are memoised by input value. */
#define MEMO_ELEMS 32768u

/* Little-endian element e of an atom row: fp16 as its bits, integers signed. */
static inline int32_t main_element(const uint8_t *p, uint32_t bytes, bool fp16)
{
    uint32_t u = bytes == 1 ? p[0] : bytes == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8
               : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return fp16 ? (int32_t)u : bytes == 1 ? (int8_t)u : bytes == 2 ? (int16_t)u : (int32_t)u;
}

/* One atom row's C2 lanes into main[channel][pixel]: the element size a constant after inlining. */
static inline void unpack_row(const uint8_t *row, uint32_t wo, uint32_t lanes, uint32_t bytes,
                              bool fp16, int32_t *dst, size_t npix)
{
    for (uint32_t l = 0; l < lanes; l++) {
        for (uint32_t x = 0; x < wo; x++) {
            dst[l * npix + x] = main_element(row + x * 16 + l * bytes, bytes, fp16);
        }
    }
}

static bool decode(struct rn_core *c, uint32_t op_en, struct rn_conv *d, struct flying *f,
                   struct rn_task_outcome *out)
{
    uint32_t fm = R(DPU_RDMA_FEATURE_MODE_CFG), src = R(DPU_RDMA_SRC_DMA_CFG);
    memset(d, 0, sizeof(*d));
    d->flying = true;
    d->dma_base = R(PC_TASK_DMA_BASE_ADDR) & ~0xFu;
    if (!(op_en & RN_OPEN_DPU_RDMA) || RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, MRDMA_DISABLE)) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: task refused: a DPU-only task needs the MRDMA "
                "(DPU_RDMA enabled, MRDMA_DISABLE 0)");
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, COMB_USE) & 1 &&
        rn_quirk_fire(c, out, RN_QUIRK_FLYING_COMB_USE, "DPU_RDMA COMB_USE %u in flying mode: "
                      "the task never completes", RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, COMB_USE))) {
        out->hang = true;
        return false;
    }
    if (!rn_decode_dpu(c, op_en, d, out) || !rn_decode_rdma(c, op_en, d, out)) {
        return false;
    }
    if (RN_FX(fm, DPU_RDMA, FEATURE_MODE_CFG, IN_PRECISION) !=
            RN_FX(R(DPU_DATA_FORMAT), DPU, DATA_FORMAT, IN_PRECISION) ||
        (src & 0x3FFF) || RN_FX(R(DPU_RDMA_DATA_CUBE_WIDTH), DPU_RDMA, DATA_CUBE_WIDTH, WIDTH) + 1 != d->wo ||
        RN_FX(R(DPU_RDMA_DATA_CUBE_HEIGHT), DPU_RDMA, DATA_CUBE_HEIGHT, HEIGHT) + 1 != d->ho) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: task refused: DPU-only task whose MRDMA "
                "precision, cube or pooling fields disagree with the DPU's");
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    f->lut_on = d->ew_on && !RN_FX(R(DPU_EW_CFG), DPU, EW_CFG, EW_LUT_BYPASS);
    if (f->lut_on && (!d->fp16 || !rn_lut_decode(c, &f->lut))) {
        rn_logf(c, RN_LOG_UNIMP, "rknpu: task refused: LUT on an integer pipeline, or LUT_CFG "
                "settings no program was seen with (LO_LE_MUX != 2, EXPAND, ROAD_SEL, CAL_SEL)");
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    if (f->lut_on && d->ew_operand) {
        rn_logf(c, RN_LOG_UNIMP, "rknpu: EW operation with the LUT on: applied as the LUT "
                "alone (unverified)");
    }
    if ((uint64_t)d->co * d->wo * d->ho * 4 > RN_MAX_BUF_BYTES) {
        rn_logf(c, RN_LOG_GUEST_ERROR, "rknpu: task refused: DPU-only cube over 64 MiB");
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    return true;
}

/* MRDMA: element (c, y, x) at SRC + (c / C2)·(W·H·16 + SURF_NOTCH) + y·(W + LINE_NOTCH)·16 +
 * x·16 + (c % C2)·e; values into main[channel][pixel], a channel's row contiguous. */
static bool fetch_main(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                       int32_t *main, struct rn_task_outcome *out)
{
    uint32_t c2 = 16 / d->in_bytes, ln = RN_FX(REG(c, DPU_RDMA_SRC_DMA_CFG), DPU_RDMA,
                                                SRC_DMA_CFG, LINE_NOTCH_ADDR);
    uint64_t surf = (uint64_t)d->wo * d->ho * 16 + (REG(c, DPU_RDMA_SURF_NOTCH) & ~0xFu);
    size_t npix = (size_t)d->wo * d->ho;
    uint8_t *row = rn_scratch(c, RN_BUF_ROW, (size_t)d->wo * 16);
    if (!row) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (uint32_t j = 0; j * c2 < d->co_calc; j++) {
        uint32_t lanes = d->co_calc - j * c2 < c2 ? d->co_calc - j * c2 : c2;
        for (uint32_t y = 0; y < d->ho; y++) {
            uint32_t a = (uint32_t)(REG(c, DPU_RDMA_SRC_BASE_ADDR) + d->dma_base + j * surf +
                                    (uint64_t)y * (d->wo + ln) * 16);
            int32_t *dst = main + (size_t)j * c2 * npix + (size_t)y * d->wo;
            out->st.bytes_read += (uint64_t)d->wo * 16;
            if (!rn_dma_get(c, m, a, row, (size_t)d->wo * 16, out)) {
                return false;
            }
            if (d->in_bytes == 2) {
                unpack_row(row, d->wo, lanes, 2, d->fp16, dst, npix);
            } else if (d->in_bytes == 1) {
                unpack_row(row, d->wo, lanes, 1, d->fp16, dst, npix);
            } else {
                unpack_row(row, d->wo, lanes, 4, d->fp16, dst, npix);
            }
        }
    }
    return true;
}

static bool fetch_bias(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                       struct flying *f, struct rn_task_outcome *out)
{
    int32_t *bias;
    uint8_t *raw;
    f->bias = NULL;
    if (!(d->bs.on && d->bs.alu && d->bs.alu_mem)) {
        return true;
    }
    bias = rn_scratch(c, RN_BUF_BIAS, (size_t)d->bias_entries * 4);
    raw = rn_scratch(c, RN_BUF_ACC, (size_t)d->bias_entries * 4);
    out->st.bytes_read += (uint64_t)d->bias_entries * 4;
    if (!bias || !raw || m->read(m->opaque, d->bias_addr + d->dma_base, raw,
                                 (size_t)d->bias_entries * 4)) {
        out->error |= RN_ERR_DMA_READ;
        return false;
    }
    for (uint32_t i = 0; i < d->bias_entries; i++) {
        bias[i] = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                            (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
    }
    f->bias = bias;
    return true;
}

static void write_out(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                      const uint8_t *obuf, struct rn_task_outcome *out)
{
    size_t surf = (size_t)d->wo * d->ho * 16;
    uint32_t nsurf = (d->co * d->out_bytes + 15) / 16;
    for (uint32_t j = 0; j < nsurf; j++) {
        out->st.bytes_written += surf;
        if (m->write(m->opaque, (uint32_t)(d->dst + d->dma_base + (uint64_t)j * d->surf_add),
                     obuf + j * surf, surf)) {
            out->error |= RN_ERR_DMA_WRITE;
            return;
        }
    }
}

void rn_flying_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                   struct rn_task_outcome *out)
{
    struct rn_conv d;
    struct flying f = { .d = &d };
    struct rn_fplan plan;
    struct rn_fmemo *memo = NULL;
    size_t npix;
    int32_t *main, *ew = NULL;
    uint8_t *obuf;
    uint32_t c2o;

    if (!decode(c, op_en, &d, &f, out)) {
        return;
    }
    npix = (size_t)d.wo * d.ho;
    c2o = 16 / d.out_bytes;
    out->st.in_w = out->st.out_w = d.wo;
    out->st.in_h = out->st.out_h = d.ho;
    out->st.in_c = d.co_calc;
    out->st.out_c = d.co;
    out->st.ew = d.ew_operand;
    main = rn_scratch(c, RN_BUF_INPUT, npix * d.co_calc * sizeof(int32_t));
    obuf = rn_scratch(c, RN_BUF_OUT, (size_t)(d.co + c2o - 1) / c2o * 16 * npix);
    if (d.ew_operand && !f.lut_on) {
        ew = rn_scratch(c, RN_BUF_EW32, (size_t)d.co_calc * npix * sizeof(int32_t));
    }
    if (!main || !obuf || (d.ew_operand && !f.lut_on && !ew)) {
        out->error |= RN_ERR_DMA_READ;
        return;
    }
    if (!fetch_main(c, mem, &d, main, out) || !fetch_bias(c, mem, &d, &f, out) ||
        (ew && !rn_fetch_ew_wide(c, mem, &d, ew, out))) {
        return;
    }
    f.ew = ew;
    if (d.fp16) {
        rn_dpu_fplan(&d, f.lut_on ? &f.lut : NULL, &plan);
        /* a memo pays when the elements outnumber the inputs it may have to compute, and holds
         * while the BRDMA operand, the one input besides the element, stays: a task's, or with
         * an operand per channel, a channel's */
        if (!ew && (f.bias ? npix : npix * d.co_calc) >= MEMO_ELEMS) {
            memo = rn_scratch(c, RN_BUF_MEMO, sizeof(*memo));
            if (memo) {
                memset(memo->known, 0, sizeof(memo->known));
            }
        }
    }
    for (uint32_t o = 0; o < (d.co + c2o - 1) / c2o * c2o; o++) {
        if (memo && f.bias && o > 0 && o < d.co_calc && f.bias[o] != f.bias[o - 1]) {
            memset(memo->known, 0, sizeof(memo->known));   /* another operand */
        }
        /* a channel's pixels in blocks, the cancel flag checked before each */
        for (size_t p0 = 0; p0 < npix; p0 += RN_CANCEL_ELEMS) {
            size_t n = npix - p0 < RN_CANCEL_ELEMS ? npix - p0 : RN_CANCEL_ELEMS;
            uint8_t *dst = obuf + ((size_t)(o / c2o) * npix + p0) * 16 + (o % c2o) * d.out_bytes;
            const int32_t *v = o < d.co_calc ? main + (size_t)o * npix + p0 : NULL;
            const int32_t *e = ew && o < d.co_calc ? ew + (size_t)o * npix + p0 : NULL;
            if (rn_cancelled(c)) {
                return;
            }
            if (o >= d.co_calc) {   /* past ORIG_CHANNEL: OFFSET_PEND (Q11) */
                for (size_t p = 0; p < n; p++) {
                    rn_extra_channel_store(dst + p * 16, d.offset_pend, d.out_bytes);
                }
            } else if (d.fp16) {
                rn_dpu_float_row(&plan, memo, f.bias ? (uint32_t)f.bias[o] : 0, v, e, n, dst, 16);
            } else {
                for (size_t p = 0; p < n; p++) {
                    int64_t ev = e ? e[p] : 0;
                    rn_out_store(dst + p * 16,
                                 rn_dpu_value(&d, v[p], 0, f.bias ? f.bias[o] : d.bs.operand,
                                              e ? &ev : NULL), d.out_prec);
                }
            }
        }
    }
    if (!out->error && !rn_cancelled(c)) {
        out->wrote = true;   /* from here on the task runs to its end (see write_output) */
        write_out(c, mem, &d, obuf, out);
    }
}
