/* Register file → convolution descriptor, with every refusal explained in the log. */
#include <string.h>

#include "conv.h"

#define F(v, blk, reg, f) RN_FX(v, blk, reg, f)
#define R(name) REG(c, name)

/* Refuse a task: unimplemented feature or guest mistake → error completion (Q14). */
static bool refuse(struct rn_core *c, struct rn_task_outcome *out, enum rn_log_kind kind,
                   const char *why)
{
    rn_logf(c, kind, "rknpu: task refused: %s", why);
    out->error = RN_ERR_DMA_READ;
    return false;
}

static void decode_alu_stage(struct rn_alu_stage *s, uint32_t cfg, uint32_t alu_cfg,
                             uint32_t relux_cmp, uint32_t mul_cfg, uint32_t shift_neg)
{
    /* BS_MUL_CFG and BN_MUL_CFG share their layout too (Q17) */
    s->mul = !F(cfg, DPU, BS_CFG, BS_MUL_BYPASS);
    s->mul_operand = (int16_t)F(mul_cfg, DPU, BS_MUL_CFG, BS_MUL_OPERAND);
    s->mul_shift = (uint8_t)F(mul_cfg, DPU, BS_MUL_CFG, BS_MUL_SHIFT_VALUE);
    s->mul_shift_neg = (uint8_t)shift_neg;
    /* BS_CFG and BN_CFG share their field layout. */
    s->on = !F(cfg, DPU, BS_CFG, BS_BYPASS);
    s->alu = !F(cfg, DPU, BS_CFG, BS_ALU_BYPASS);
    s->alu_mem = F(cfg, DPU, BS_CFG, BS_ALU_SRC);
    s->sub = F(cfg, DPU, BS_CFG, BS_ALU_ALGO) == 4;
    s->operand = (int32_t)alu_cfg;
    s->relu = !F(cfg, DPU, BS_CFG, BS_RELU_BYPASS);
    s->relux = F(cfg, DPU, BS_CFG, BS_RELUX_EN);
    s->relux_cmp = (int32_t)relux_cmp;
}

/* Checks shared by BS and BN: what the model does not implement. */
static const char *alu_stage_unimp(const struct rn_alu_stage *s, uint32_t cfg, uint32_t mul_cfg)
{
    uint32_t algo = F(cfg, DPU, BS_CFG, BS_ALU_ALGO);
    if (!s->on) {
        return NULL;
    }
    if (s->mul && (F(mul_cfg, DPU, BS_MUL_CFG, BS_MUL_SRC) ||
                   F(mul_cfg, DPU, BS_MUL_CFG, BS_TRUNCATE_SRC) ||
                   F(cfg, DPU, BS_CFG, BS_MUL_PRELU))) {
        return "BS/BN multiplier operand from memory, or PReLU";
    }
    if (s->alu && algo != 2 && algo != 4) {
        return "BS/BN ALU algorithm other than add/minus";
    }
    return NULL;
}

static bool decode_cna(struct rn_core *c, struct rn_conv *d, struct rn_task_outcome *out)
{
    uint32_t con1 = R(CNA_CONV_CON1), con3 = R(CNA_CONV_CON3), cvt0 = R(CNA_CVT_CON0);
    uint32_t argb = F(con1, CNA, CONV_CON1, ARGB_IN), mode = F(con1, CNA, CONV_CON1, CONV_MODE);
    uint32_t misc = R(CORE_MISC_CFG);

    if (mode != 0 && mode != 3) {
        return refuse(c, out, RN_LOG_UNIMP, "CNA CONV_MODE other than direct/depthwise");
    }
    /* Q19: one precision for CNA IN, CNA PROC and CORE PROC */
    d->prec = F(con1, CNA, CONV_CON1, IN_PRECISION);
    if (F(con1, CNA, CONV_CON1, PROC_PRECISION) != d->prec ||
        F(misc, CORE, MISC_CFG, PROC_PRECISION) != d->prec || !rn_prec_info(d->prec, &d->p)) {
        return refuse(c, out, RN_LOG_UNIMP, "CNA IN/PROC and CORE PROC precisions that differ, or "
                      "a reserved one (4, 5)");
    }
    if (F(con1, CNA, CONV_CON1, DECONV) || F(con3, CNA, CONV_CON3, NN_MODE) ||
        F(con3, CNA, CONV_CON3, ATROUS_X_DILATION) || F(con3, CNA, CONV_CON3, ATROUS_Y_DILATION)) {
        return refuse(c, out, RN_LOG_UNIMP, "deconvolution, dilation or multi-core NN_MODE");
    }
    if (F(R(CNA_FC_CON0), CNA, FC_CON0, FC_SKIP_EN) ||
        F(R(CNA_DCOMP_CTRL), CNA, DCOMP_CTRL, DECOMP_CONTROL)) {
        return refuse(c, out, RN_LOG_UNIMP, "FC zero-skip or weight decompression");
    }
    if (argb != 0 && (argb < 8 || argb > 11)) {
        return refuse(c, out, RN_LOG_UNIMP, "ARGB_IN mode other than 8..11");
    }
    d->dw = mode == 3;
    d->raw_acc = !F(misc, CORE, MISC_CFG, QD_EN);
    if ((bool)F(misc, CORE, MISC_CFG, DW_EN) != d->dw) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "CORE DW_EN disagrees with CNA CONV_MODE");
    }
    if (d->prec != RN_CNA_INT8 &&
        ((d->dw && !d->p.dw_group) || argb || (d->p.fp && !F(cvt0, CNA, CVT_CON0, CVT_BYPASS)))) {
        return refuse(c, out, RN_LOG_UNIMP, "depthwise other than int8/fp16, dense input other "
                      "than int8, or the CNA input converter on float data");
    }
    if (d->raw_acc && d->prec != RN_CNA_INT8 && d->prec != RN_CNA_INT4) {
        return refuse(c, out, RN_LOG_UNIMP, "CORE QD_EN 0 with a 16-bit or float precision (the "
                      "hardware computes only the first kernel group; not modelled)");
    }
    d->wi = F(R(CNA_DATA_SIZE0), CNA, DATA_SIZE0, DATAIN_WIDTH);
    d->hi = F(R(CNA_DATA_SIZE0), CNA, DATA_SIZE0, DATAIN_HEIGHT);
    d->ci = F(R(CNA_DATA_SIZE1), CNA, DATA_SIZE1, DATAIN_CHANNEL);
    d->kw = F(R(CNA_WEIGHT_SIZE2), CNA, WEIGHT_SIZE2, WEIGHT_WIDTH);
    d->kh = F(R(CNA_WEIGHT_SIZE2), CNA, WEIGHT_SIZE2, WEIGHT_HEIGHT);
    d->k = d->dw ? 1 : F(R(CNA_WEIGHT_SIZE2), CNA, WEIGHT_SIZE2, WEIGHT_KERNELS);
    d->sx = F(con3, CNA, CONV_CON3, CONV_X_STRIDE);
    d->sy = F(con3, CNA, CONV_CON3, CONV_Y_STRIDE);
    d->pt = F(R(CNA_PAD_CON0), CNA, PAD_CON0, PAD_TOP);
    d->pl = F(R(CNA_PAD_CON0), CNA, PAD_CON0, PAD_LEFT);
    if (!d->wi || !d->hi || !d->ci || !d->kw || !d->kh || !d->k || !d->sx || !d->sy) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "zero input size, kernel or stride");
    }
    d->feat_addr = R(CNA_FEATURE_DATA_ADDR);
    d->argb_n = argb ? argb - 7 : 0;
    d->cbytes = (uint32_t)(((uint64_t)d->ci * d->p.bits + 7) / 8);
    rn_feature_pitches(R(CNA_DMA_CON1), R(CNA_DMA_CON2), &d->row_pitch, &d->surf_pitch);
    if (d->argb_n) {
        d->row_pitch = (int64_t)(R(CNA_DMA_CON1) & 0x0FFFFFFF) * d->argb_n;
    } else if (F(con1, CNA, CONV_CON1, GROUP_LINE_OFF)) {
        /* Q19: row-major A (GN matmul-as-conv, measured at W = 1 and SURF_STRIDE 0) */
        if (d->wi != 1 || (R(CNA_DMA_CON2) & 0x0FFFFFFF)) {
            return refuse(c, out, RN_LOG_UNIMP, "GROUP_LINE_OFF (row-major feature) other than "
                          "at DATAIN_WIDTH 1 and SURF_STRIDE 0");
        }
        rn_row_major_pitches(R(CNA_DMA_CON1), &d->row_pitch, &d->surf_pitch);
    }
    d->cvt_on = !F(cvt0, CNA, CVT_CON0, CVT_BYPASS);
    d->cvt_signed = F(cvt0, CNA, CVT_CON0, DATA_SIGN);
    d->cvt_add_first = F(cvt0, CNA, CVT_CON0, CVT_TYPE);
    d->cvt_half_up = F(cvt0, CNA, CVT_CON0, ROUND_TYPE);
    d->cvt_en = R(CNA_CVT_CON5);
    for (int n = 0; n < 4; n++) {
        uint32_t p = c->regs[(RN_CNA_CVT_CON1 + 4 * n) / 4];
        d->cvt[n].scale = (int16_t)(p >> 16);
        d->cvt[n].offset = (int16_t)(p & 0xFFFF);
        d->cvt[n].trunc = (uint8_t)((cvt0 >> (4 + 6 * n)) & 0x3F);
    }
    d->pad_con1 = R(CNA_PAD_CON1);
    d->wt_addr = R(CNA_DCOMP_ADDR0);
    d->wt_bytes = ((uint64_t)d->k * d->kh * d->kw * d->ci * d->p.bits + 7) / 8;
    d->weight_reuse = F(R(CNA_CBUF_CON0), CNA, CBUF_CON0, WEIGHT_REUSE);
    if (R(CNA_WEIGHT_SIZE1) != ((uint64_t)d->kh * d->kw * d->ci * d->p.bits + 7) / 8) {
        rn_logf(c, RN_LOG_GUEST_ERROR,
                "rknpu: WEIGHT_SIZE1 %u differs from the bytes of kh*kw*DATAIN_CHANNEL %llu "
                "(using the latter)", R(CNA_WEIGHT_SIZE1),
                (unsigned long long)(((uint64_t)d->kh * d->kw * d->ci * d->p.bits + 7) / 8));
    }
    d->trunc = F(R(CORE_CLIP_TRUNCATE), CORE, CLIP_TRUNCATE, CLIP_TRUNCATE);
    d->trunc_half_up = F(R(CORE_CLIP_TRUNCATE), CORE, CLIP_TRUNCATE, ROUND_TYPE);
    return true;
}

/* The precisions of a DPU-only task (Q18): proc int8/int16/int32 or fp16, and the output. */
static bool decode_flying_precision(struct rn_core *c, struct rn_conv *d, uint32_t fmt,
                                    struct rn_task_outcome *out)
{
    uint32_t in = F(fmt, DPU, DATA_FORMAT, IN_PRECISION);
    uint32_t proc = F(fmt, DPU, DATA_FORMAT, PROC_PRECISION);
    bool to_half = F(R(DPU_OUT_CVT_SCALE), DPU, OUT_CVT_SCALE, FP32TOFP16_EN);
    d->fp16 = proc == RN_PREC_FP16;
    d->in_bytes = in == RN_PREC_FP16 ? 2 : rn_out_bytes(in);
    if (in != proc || !d->in_bytes || (!d->fp16 && proc == RN_PREC_FP32)) {
        return refuse(c, out, RN_LOG_UNIMP, "DPU-only task with a precision other than "
                      "int8/int16/int32/fp16 (IN = PROC)");
    }
    if (d->fp16 ? !((d->out_prec == RN_PREC_FP16 && to_half) ||
                    (d->out_prec == RN_PREC_FP32 && !to_half))
                : (!d->out_bytes || to_half)) {
        return refuse(c, out, RN_LOG_UNIMP, "DPU-only output precision other than the proc's "
                      "integer types or fp16/fp32 from fp16");
    }
    d->out_bytes = d->out_prec == RN_PREC_FP16 ? 2 : d->out_bytes;
    return true;
}

/*
 * The DPU side of a convolution (Q10, Q19): IN = PROC = the CNA precision's DPU code; integer
 * precisions write int8/int16/int32/fp32, float ones fp32 or (FP32TOFP16_EN) fp16.
 */
static bool decode_conv_precision(struct rn_core *c, struct rn_conv *d, uint32_t fmt,
                                  struct rn_task_outcome *out)
{
    bool to_half = F(R(DPU_OUT_CVT_SCALE), DPU, OUT_CVT_SCALE, FP32TOFP16_EN);
    if (F(fmt, DPU, DATA_FORMAT, IN_PRECISION) != d->p.dpu ||
        F(fmt, DPU, DATA_FORMAT, PROC_PRECISION) != d->p.dpu) {
        return refuse(c, out, RN_LOG_UNIMP, "DPU IN/PROC precision other than the CNA's (tf32: "
                      "fp32)");
    }
    d->fdpu = d->p.fp;
    if (d->fdpu ? !((d->out_prec == RN_PREC_FP16 && to_half) ||
                    (d->out_prec == RN_PREC_FP32 && !to_half))
                : (!d->out_bytes || to_half)) {
        return refuse(c, out, RN_LOG_UNIMP, d->fdpu ? "float convolution to an output other than "
                      "fp32 or fp16 (FP32TOFP16_EN)" : "DPU integer pipeline to an output other "
                      "than int8/int16/int32/fp32");
    }
    d->out_bytes = d->out_prec == RN_PREC_FP16 ? 2 : d->out_bytes;
    return true;
}

bool rn_decode_dpu(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                   struct rn_task_outcome *out)
{
    uint32_t fm = R(DPU_FEATURE_MODE_CFG), fmt = R(DPU_DATA_FORMAT);
    uint32_t chan = R(DPU_DATA_CUBE_CHANNEL), ow = R(DPU_BS_OW_CFG), ew = R(DPU_EW_CFG);
    const char *why;

    if (F(fm, DPU, FEATURE_MODE_CFG, FLYING_MODE) != d->flying ||
        F(fm, DPU, FEATURE_MODE_CFG, TP_EN) || F(fm, DPU, FEATURE_MODE_CFG, NONALIGN) ||
        F(fm, DPU, FEATURE_MODE_CFG, OUTPUT_MODE) != 2) {
        return refuse(c, out, RN_LOG_UNIMP, d->flying ? "DPU-only task not in flying mode to "
                      "memory (or transposed, non-aligned)" : "DPU flying/transpose/non-aligned/"
                      "PPU output mode in a convolution");
    }
    d->out_prec = F(fmt, DPU, DATA_FORMAT, OUT_PRECISION);
    d->out_bytes = rn_out_bytes(d->out_prec);
    if (F(fmt, DPU, DATA_FORMAT, MC_SURF_OUT)) {
        return refuse(c, out, RN_LOG_UNIMP, "DPU MC_SURF_OUT serial writer");
    }
    if (d->flying ? !decode_flying_precision(c, d, fmt, out)
                  : !decode_conv_precision(c, d, fmt, out)) {
        return false;
    }
    if (F(R(DPU_DATA_CUBE_HEIGHT), DPU, DATA_CUBE_HEIGHT, MINMAX_CTL)) {
        return refuse(c, out, RN_LOG_UNIMP, "DPU min/max reduction");
    }
    d->wo = F(R(DPU_DATA_CUBE_WIDTH), DPU, DATA_CUBE_WIDTH, WIDTH) + 1;
    d->ho = F(R(DPU_DATA_CUBE_HEIGHT), DPU, DATA_CUBE_HEIGHT, HEIGHT) + 1;
    if (!d->flying &&
        (d->wo != F(R(CORE_DATAOUT_SIZE_0), CORE, DATAOUT_SIZE_0, DATAOUT_WIDTH) + 1 ||
         d->ho != F(R(CORE_DATAOUT_SIZE_0), CORE, DATAOUT_SIZE_0, DATAOUT_HEIGHT) + 1)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "CORE DATAOUT_SIZE_0 differs from DPU cube");
    }
    d->co = F(chan, DPU, DATA_CUBE_CHANNEL, CHANNEL) + 1;
    d->co_calc = F(chan, DPU, DATA_CUBE_CHANNEL, ORIG_CHANNEL) + 1;
    if (d->co_calc > d->co) {
        d->co_calc = d->co;
    }
    decode_alu_stage(&d->bs, R(DPU_BS_CFG), R(DPU_BS_ALU_CFG), R(DPU_BS_RELUX_CMP_VALUE),
                     R(DPU_BS_MUL_CFG), F(fmt, DPU, DATA_FORMAT, BS_MUL_SHIFT_VALUE_NEG));
    decode_alu_stage(&d->bn, R(DPU_BN_CFG), R(DPU_BN_ALU_CFG), R(DPU_BN_RELUX_CMP_VALUE),
                     R(DPU_BN_MUL_CFG), F(fmt, DPU, DATA_FORMAT, BN_MUL_SHIFT_VALUE_NEG));
    if ((why = alu_stage_unimp(&d->bs, R(DPU_BS_CFG), R(DPU_BS_MUL_CFG))) ||
        (why = alu_stage_unimp(&d->bn, R(DPU_BN_CFG), R(DPU_BN_MUL_CFG)))) {
        return refuse(c, out, RN_LOG_UNIMP, why);
    }
    if (d->bn.on && d->bn.alu && d->bn.alu_mem) {
        return refuse(c, out, RN_LOG_UNIMP, "BN operand from NRDMA");
    }
    d->cpend = d->bs.on && !F(ow, DPU, BS_OW_CFG, OD_BYPASS);
    d->ow_op = R(DPU_BS_OW_OP);
    if (d->cpend && (F(ow, DPU, BS_OW_CFG, OW_SRC) || d->fdpu)) {
        return refuse(c, out, RN_LOG_UNIMP, "CPEND operand from memory (OW_SRC=1), or CPEND "
                      "on float data");
    }
    d->bias_addr = R(DPU_RDMA_BS_BASE_ADDR);
    d->bias_entries = rn_bias_entries(F(chan, DPU, DATA_CUBE_CHANNEL, CHANNEL));
    if (d->bs.on && d->bs.alu && d->bs.alu_mem && !(op_en & RN_OPEN_DPU_RDMA)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "bias from BRDMA but DPU_RDMA not enabled");
    }

    d->ew_on = !F(ew, DPU, EW_CFG, EW_BYPASS);
    d->ew_operand = d->ew_on && !F(ew, DPU, EW_CFG, EW_OP_BYPASS);
    if (d->ew_on) {
        /* EQUAL_EN shows no effect (allbilly); BINARY_EN writes zeros (refused, Q17) */
        if ((!F(ew, DPU, EW_CFG, EW_LUT_BYPASS) && !d->flying) ||
            F(ew, DPU, EW_CFG, EW_BINARY_EN)) {
            return refuse(c, out, RN_LOG_UNIMP, "EW LUT in a convolution, or EW binary mode");
        }
        d->ew_relu = !F(ew, DPU, EW_CFG, EW_RELU_BYPASS);
        d->ew_relux = F(ew, DPU, EW_CFG, EW_RELUX_EN);
        d->ew_relux_cmp = (int32_t)R(DPU_EW_RELUX_CMP_VALUE);
    }
    if (d->ew_operand) {
        uint32_t algo = F(ew, DPU, EW_CFG, EW_ALU_ALGO), sc = R(DPU_EW_CVT_SCALE_VALUE);
        uint32_t size = F(ew, DPU, EW_CFG, EDATA_SIZE), mode = F(ew, DPU, EW_CFG, EW_DATA_MODE);
        d->ew_mul = F(ew, DPU, EW_CFG, EW_OP_TYPE);
        d->ew_from_regs = !F(ew, DPU, EW_CFG, EW_OP_SRC);
        d->ew_bytes = size == 1 ? 1 : size == 2 ? 2 : size == 3 ? 4 : 0;
        d->ew_per_channel = mode == 0;
        if ((!d->ew_from_regs && (!d->ew_bytes || mode > 1)) || F(ew, DPU, EW_CFG, EW_MUL_PRELU) ||
            (!d->ew_mul && (algo == 3 || algo > 6)) ||
            F(sc, DPU, EW_CVT_SCALE_VALUE, EW_TRUNCATE) ||
            F(fmt, DPU, DATA_FORMAT, EW_TRUNCATE_NEG)) {
            return refuse(c, out, RN_LOG_UNIMP,
                          "EW operand: 4-bit or per-channel-by-pixel data, PReLU, DIV/FLOOR/CEIL "
                          "(floating semantics) or EW_TRUNCATE");
        }
        for (int n = 0; n < 8; n++) {
            d->ew_reg[n] = (int32_t)c->regs[(RN_DPU_EW_OP_VALUE_0 + 4 * n) / 4];
        }
        d->ew_algo = algo;
        d->ew_cvt = !F(ew, DPU, EW_CFG, EW_OP_CVT_BYPASS);
        d->ew_add_first = F(ew, DPU, EW_CFG, EW_CVT_TYPE);
        d->ew_half_up = F(ew, DPU, EW_CFG, EW_CVT_ROUND);
        d->ew_offset = (int32_t)R(DPU_EW_CVT_OFFSET_VALUE);
        d->ew_scale = (int16_t)F(sc, DPU, EW_CVT_SCALE_VALUE, EW_OP_CVT_SCALE);
        d->ew_shift = F(sc, DPU, EW_CVT_SCALE_VALUE, EW_OP_CVT_SHIFT);
    }
    d->out_scale = R(DPU_OUT_CVT_SCALE);
    d->out_shift = R(DPU_OUT_CVT_SHIFT);
    d->out_offset = R(DPU_OUT_CVT_OFFSET);
    if (d->fdpu && d->ew_operand && !d->ew_from_regs && d->ew_bytes == 1) {
        return refuse(c, out, RN_LOG_UNIMP, "8-bit EW operand on float data");
    }
    d->dst = R(DPU_DST_BASE_ADDR);
    d->dst_surf_stride = R(DPU_DST_SURF_STRIDE) & ~0xFu;
    d->surf_add = R(DPU_SURFACE_ADD) & ~0xFu;
    /* the WDMA's kernel group (Q11, Q19): the weight N-group or depthwise group; flying: an atom */
    d->group_channels = d->flying ? 16 / d->out_bytes : d->dw ? d->p.dw_group : d->p.ng;
    if (!d->flying) {
        uint32_t notch = R(DPU_DATA_CUBE_NOTCH_ADDR);
        d->notch = F(notch, DPU, DATA_CUBE_NOTCH_ADDR, NOTCH_ADDR_0);
        if (F(notch, DPU, DATA_CUBE_NOTCH_ADDR, NOTCH_ADDR_1) != d->notch) {
            rn_logf(c, RN_LOG_UNIMP, "rknpu: DATA_CUBE_NOTCH_ADDR halves %u/%u differ: rows "
                    "written NOTCH_ADDR_0 atoms apart (unverified on hardware)",
                    d->notch, F(notch, DPU, DATA_CUBE_NOTCH_ADDR, NOTCH_ADDR_1));
        }
    }
    d->offset_pend = R(DPU_OFFSET_PEND);
    return true;
}

bool rn_decode_rdma(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out)
{
    uint32_t fm = R(DPU_RDMA_FEATURE_MODE_CFG), er = R(DPU_RDMA_ERDMA_CFG);
    uint32_t comb = F(fm, DPU_RDMA, FEATURE_MODE_CFG, COMB_USE);

    if (!(op_en & RN_OPEN_DPU_RDMA)) {
        if (d->ew_operand && !d->ew_from_regs) {
            return refuse(c, out, RN_LOG_GUEST_ERROR, "EW operand but DPU_RDMA not enabled");
        }
        return true;
    }
    if (F(R(DPU_RDMA_BRDMA_CFG), DPU_RDMA, BRDMA_CFG, BRDMA_DATA_USE) & ~1u ||
        F(R(DPU_RDMA_NRDMA_CFG), DPU_RDMA, NRDMA_CFG, NRDMA_DATA_USE)) {
        return refuse(c, out, RN_LOG_UNIMP, "BRDMA/NRDMA data other than a dense int32 bias");
    }
    if (!d->ew_operand || d->ew_from_regs) {
        return true;
    }
    if (F(er, DPU_RDMA, ERDMA_CFG, ERDMA_DISABLE)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "EW operand from a disabled ERDMA");
    }
    if (F(er, DPU_RDMA, ERDMA_CFG, ERDMA_DATA_SIZE) != F(R(DPU_EW_CFG), DPU, EW_CFG, EDATA_SIZE) ||
        F(er, DPU_RDMA, ERDMA_CFG, ERDMA_DATA_MODE) !=
            F(R(DPU_EW_CFG), DPU, EW_CFG, EW_DATA_MODE)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "ERDMA data size or mode differs from EW_CFG's");
    }
    if (F(R(DPU_RDMA_DATA_CUBE_WIDTH), DPU_RDMA, DATA_CUBE_WIDTH, WIDTH) + 1 != d->wo ||
        F(R(DPU_RDMA_DATA_CUBE_HEIGHT), DPU_RDMA, DATA_CUBE_HEIGHT, HEIGHT) + 1 != d->ho) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "DPU_RDMA cube differs from the DPU cube");
    }
    d->ew_two_streams = comb & 1;
    if (d->ew_two_streams && (d->ew_per_channel || (d->ew_bytes != 1 && d->prec == RN_CNA_INT8))) {
        return refuse(c, out, RN_LOG_UNIMP, "two ERDMA streams (COMB_USE) of per-channel data, or "
                      "of other than int8 data in an int8 convolution");
    }
    d->ew_src = R(DPU_RDMA_SRC_BASE_ADDR);
    d->ew_base = R(DPU_RDMA_EW_BASE_ADDR);
    d->ew_notch_src = R(DPU_RDMA_SURF_NOTCH) & ~0xFu;
    d->ew_notch_ew = R(DPU_RDMA_EW_SURF_NOTCH) & ~0xFu;
    d->ew_surf_stride = R(DPU_RDMA_EW_SURF_STRIDE) & ~0xFu;
    return true;
}

/* Absurd sizes are refused before anything is allocated. */
static bool check_limits(struct rn_core *c, struct rn_conv *d, struct rn_task_outcome *out)
{
    uint64_t c16 = ((uint64_t)d->cbytes + 15) / 16 * 16;
    uint64_t hp = (uint64_t)(d->ho - 1) * d->sy + d->kh, wp = (uint64_t)(d->wo - 1) * d->sx + d->kw;
    uint64_t co16 = ((uint64_t)d->co + 15) / 16 * 16 * d->out_bytes;
    uint64_t taps = (uint64_t)d->kh * d->kw;
    uint64_t macs = (uint64_t)d->wo * d->ho * d->co_calc * taps * (d->dw ? 1 : d->ci);
    /* the other precisions hold their tile and weights as 4- or 8-byte elements (Q19) */
    bool int8 = d->prec == RN_CNA_INT8;
    uint64_t el = int8 ? 1 : 8, lim = int8 ? RN_MAX_BUF_BYTES : 2ull * RN_MAX_BUF_BYTES;
    if (c16 * d->wi * d->hi > RN_MAX_BUF_BYTES || hp * wp * d->ci * el > lim ||
        d->wt_bytes > RN_MAX_BUF_BYTES || co16 * d->wo * d->ho > RN_MAX_BUF_BYTES ||
        (!int8 && (uint64_t)d->k * taps * d->ci * el > lim) ||
        (uint64_t)d->wo * taps * d->ci > RN_MAX_BUF_BYTES) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "tensor or weights larger than 64 MiB");
    }
    if (macs > RN_MAX_TASK_MACS || (!d->dw && taps * d->ci > RN_MAX_DOT_TERMS)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "absurd amount of work for one task");
    }
    return true;
}

bool rn_conv_decode(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out)
{
    memset(d, 0, sizeof(*d));
    d->dma_base = R(PC_TASK_DMA_BASE_ADDR) & ~0xFu;
    return decode_cna(c, d, out) && rn_decode_dpu(c, op_en, d, out) &&
           rn_decode_rdma(c, op_en, d, out) && check_limits(c, d, out) &&
           rn_conv_quirks(c, op_en, d, out);
}
