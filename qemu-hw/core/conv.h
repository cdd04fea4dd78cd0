/* A convolution task as decoded from the register file (task.c) and executed (pipeline.c). */
#ifndef RKNPU_CONV_H
#define RKNPU_CONV_H

#include "hwchoices.h"
#include "internal.h"

/* One DPU post-processing ALU stage (BS or BN) and its activation. */
struct rn_alu_stage {
    bool on;            /* stage not bypassed */
    bool alu;           /* ALU not bypassed */
    bool alu_mem;       /* operand per channel from BRDMA (BS only) */
    bool sub;           /* ALU_ALGO 4: v - operand; else add */
    int32_t operand;    /* register operand */
    bool mul;           /* MUL not bypassed: v · mul_operand >> shift (Q17) */
    int16_t mul_operand;
    uint8_t mul_shift, mul_shift_neg;   /* for products >= 0 and < 0 */
    bool relu, relux;
    int32_t relux_cmp;
};

struct rn_conv {
    bool flying;                   /* a DPU-only task: main data from the MRDMA (Q18) */
    bool fp16;                     /* DPU proc precision fp16 (flying only) */
    uint32_t in_bytes;             /* MRDMA element bytes (flying) */
    uint32_t prec;                 /* CNA/CORE precision (RN_CNA_*, Q19); RN_CNA_INT8 in flying */
    struct rn_prec p;              /* its element size, weight tiles and DPU code */
    bool fdpu;                     /* the DPU works on fp32 values: a float CNA precision */
    uint32_t cbytes;               /* bytes of one input pixel's channels: ceil(ci * bits / 8) */
    bool dw;
    uint32_t wi, hi, ci;           /* input tile: DATAIN_WIDTH/HEIGHT/CHANNEL */
    uint32_t kw, kh, k;            /* kernel size and kernels */
    uint32_t sx, sy, pt, pl;       /* strides, top and left pad */
    uint32_t wo, ho;               /* output cube */
    uint32_t co;                   /* channels written: DPU CHANNEL + 1 */
    uint32_t co_calc;              /* channels computed: min(ORIG_CHANNEL + 1, co) */
    uint32_t dma_base;             /* PC TASK_DMA_BASE_ADDR, added to every data address */

    /* CNA fetch */
    uint32_t feat_addr;
    int64_t row_pitch, surf_pitch; /* normal (NC1HWC2) mode */
    uint32_t argb_n;               /* dense mode bytes per pixel; 0 in normal mode */
    bool cvt_on, cvt_signed, cvt_add_first, cvt_half_up;
    uint32_t cvt_en;
    struct rn_cvt_lane cvt[4];
    uint32_t pad_con1;
    uint32_t wt_addr;
    uint64_t wt_bytes;             /* bytes the weight layout spans */
    bool weight_reuse;
    uint32_t trunc;
    bool trunc_half_up;

    /* DPU */
    struct rn_alu_stage bs, bn;
    uint32_t bias_addr, bias_entries;
    bool cpend;
    uint32_t ow_op;
    bool ew_on, ew_operand;        /* stage active; operand read from memory */
    uint32_t ew_algo;              /* enum rn_ew_algo */
    bool ew_mul;                   /* EW_OP_TYPE 1: v · e' */
    bool ew_from_regs;             /* EW_OP_SRC 0: EW_OP_VALUE_[(c / 8) % 8] */
    bool ew_per_channel;           /* EW_DATA_MODE 0: one operand per channel */
    uint32_t ew_bytes;             /* EDATA_SIZE: 1, 2 or 4 bytes an element */
    int32_t ew_reg[8];
    bool ew_cvt, ew_add_first, ew_half_up;
    int32_t ew_offset;
    int16_t ew_scale;
    uint32_t ew_shift;
    bool ew_relu, ew_relux;
    int32_t ew_relux_cmp;
    bool ew_two_streams;
    uint32_t ew_src, ew_base, ew_notch_src, ew_notch_ew, ew_surf_stride;
    uint32_t out_scale, out_shift, out_offset;
    uint32_t out_prec, out_bytes;  /* DATA_FORMAT.OUT_PRECISION and its element size (Q10) */
    uint32_t dst, dst_surf_stride, surf_add, group_channels;
    uint32_t notch;                /* DATA_CUBE_NOTCH_ADDR.NOTCH_ADDR_0: atoms between rows */
    uint32_t offset_pend;

    /* quirks that fired (Q15): their effects on the data path */
    bool cbuf_remap;               /* feature reads go through the CBUF model below */
    struct rn_cbuf_geom cbuf;
    uint64_t cbuf_pitch;           /* units between rows as stored (DATA_ENTRIES when short) */
    bool slab_wrap;
    uint64_t fc_shift;             /* units (FC_DATA_BANK · 512) */
    uint32_t surf_written;         /* surfaces per kernel group the writer stores (SIZE_E) */
    bool size_e_hang;              /* write 1024 bytes, then hang */
    uint16_t lane_zero;            /* output lanes (c % 16) forced to 0 by MAC gating */
    bool cacc_chain;               /* sums add the previous task's CACC residue */
    bool raw_acc;                  /* CORE QD_EN = 0: the raw accumulator path */
};

/* The LUT of a task (Q18). */
struct rn_lut {
    int16_t table[2][RN_LUT_ENTRIES];   /* LE, LO */
    int32_t start[2], end[2];
    uint32_t index_select[2];           /* log2 of the input step between entries */
    int16_t uflow_scale[2], oflow_scale[2];
    uint32_t uflow_shift[2], oflow_shift[2];
    bool hybrid_lo, oflow_lo, uflow_lo; /* which table wins: both hit, both over, both under */
    double step[2];                     /* 2^-index_select, 2^-uflow_shift, 2^-oflow_shift: */
    double uflow_unit[2], oflow_unit[2];/* exact, as ldexp() would scale by them */
};

/* Decode the LUT registers of the task (lut.c); false for settings no program was seen with. */
bool rn_lut_decode(const struct rn_core *c, struct rn_lut *l);
/* The powers of two rn_lut_eval() scales by, from the fields (rn_lut_decode does it). */
void rn_lut_prepare(struct rn_lut *l);

/* Where x falls for table t: -1 below START, 0 inside, 1 above END. */
static inline int rn_lut_side(const struct rn_lut *l, int t, double x)
{
    return x < l->start[t] ? -1 : x > l->end[t] ? 1 : 0;
}

/*
 * The LUT on x (Q18): the table the range/priority rules select, interpolated inside it,
 * extrapolated past its ends. Inline and without branches on x (random data would mispredict
 * them): the flying rows call it once an element. The scalings by powers of two are exact as
 * ldexp() was: a nonzero x - START or x - END is at least 2^-149, the units at least 2^-31.
 */
static inline double rn_lut_eval(const struct rn_lut *l, double x)
{
    int le = rn_lut_side(l, 0, x), lo = rn_lut_side(l, 1, x), t, st, q;
    double start, end, pos, clamped, under, over, inside;
    const int16_t *tab;
    int32_t first, last, tq, tq1;
    /* both hit: the hybrid priority; one hits: that one; neither: below both STARTs, the
     * underflow priority, else the overflow one */
    t = !le && !lo ? l->hybrid_lo : !le || !lo ? !lo
      : x < l->start[0] && x < l->start[1] ? l->uflow_lo : l->oflow_lo;
    /* every load unconditional (q clamped into the table), so that the choices are selects */
    tab = l->table[t];
    start = l->start[t];
    end = l->end[t];
    st = x < start ? -1 : x > end ? 1 : 0;
    pos = (x - start) * l->step[t];
    clamped = pos < 0 ? 0 : pos < RN_LUT_ENTRIES - 1 ? pos : RN_LUT_ENTRIES - 2;
    q = (int)clamped;   /* floor, for the pos that counts: 0 <= pos < 512 */
    first = tab[0];
    last = tab[RN_LUT_ENTRIES - 1];
    tq = tab[q];
    tq1 = tab[q + 1];
    under = first + (x - start) * l->uflow_scale[t] * l->uflow_unit[t];
    over = last + (x - end) * l->oflow_scale[t] * l->oflow_unit[t];
    inside = pos >= RN_LUT_ENTRIES - 1 ? last : tq + (tq1 - tq) * (pos - q);
    /* a NaN has no table and no entry: it goes through (Q18, L) */
    return x != x ? x : st < 0 ? under : st > 0 ? over : inside;
}

/* Channels per 16-byte output atom, and the byte of output element (o, pixel) in the task's
 * surface buffer ([surface][pixel][16 bytes]). */
static inline uint32_t rn_c2o(const struct rn_conv *d) { return 16u / d->out_bytes; }
static inline uint8_t *rn_obuf_at(void *obuf, const struct rn_conv *d, uint32_t o, size_t pix)
{
    return (uint8_t *)obuf + ((size_t)(o / rn_c2o(d)) * d->ho * d->wo + pix) * 16 +
           (o % rn_c2o(d)) * d->out_bytes;
}

/* A DPU-only task (op_en without CNA/CORE, main data from the MRDMA): flying.c (Q18). */
void rn_flying_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                   struct rn_task_outcome *out);

/* EW_ALU_ALGO values the integer pipeline implements (Q17). */
enum rn_ew_algo { RN_EW_MAX = 0, RN_EW_MIN = 1, RN_EW_ADD = 2, RN_EW_MINUS = 4, RN_EW_ABS = 5,
                  RN_EW_NEG = 6 };

/* The DPU stages of one element, OUT_CVT included, before the output type (dpu.c). */
int64_t rn_dpu_value(const struct rn_conv *d, int64_t acc, int64_t wsum, int32_t bias,
                     const int64_t *e);
/*
 * A two-operand fp32 step of the DPU pipeline (a the value, b the operand) with its result r:
 * a NaN a goes through quieted, else a NaN b (Q18), whatever order the compiler gives the
 * operands of + and · and whatever the host's NaN rules.
 */
static inline float rn_nan_first(float a, float b, float r)
{
    return a != a ? a + a : b != b ? b + b : r;
}

/* A signalling NaN: a NaN with the quiet bit clear. */
static inline bool rn_snan(float a)
{
    uint32_t u;
    memcpy(&u, &a, 4);
    return (u & 0x7FC00000u) == 0x7F800000u && (u & 0x3FFFFFu);
}

/*
 * EW max and min as the model has always computed them, through x86-64 glibc's fmaxf/fminf:
 * equal values (±0) give b, a quiet NaN loses to a number, a signalling one gives a NaN as
 * rn_nan_first does. Written out so that no host, libm or loop shape changes them.
 */
static inline float rn_fmax(float a, float b)
{
    return a > b ? a : a <= b ? b : rn_snan(a) || rn_snan(b) ? rn_nan_first(a, b, a)
         : b != b ? a : b;
}

static inline float rn_fmin(float a, float b)
{
    return a < b ? a : a >= b ? b : rn_snan(a) || rn_snan(b) ? rn_nan_first(a, b, a)
         : b != b ? a : b;
}

/*
 * The fp32 DPU pipeline for one element (Q18): BS, BN, EW (or the LUT, when lut is not NULL),
 * OUT_CVT on float data. bias: the BRDMA operand's bits; e: the EW operand's raw element or NULL.
 */
float rn_dpu_float(const struct rn_conv *d, const struct rn_lut *lut, float v, uint32_t bias,
                   const int32_t *e);
/* Store a float DPU result as fp16 (OUT_PRECISION 2, round to nearest even) or fp32. */
void rn_float_store(uint8_t *dst, float v, uint32_t out_prec);

/*
 * rn_dpu_float() with the task's register fields decoded once (dpu.c): a DPU-only task's channel
 * goes through it as one row, the same arithmetic on every element (test-dpu checks the bytes).
 */
struct rn_fstage {
    bool on, alu, alu_mem, sub, mul, relu, relux;
    float op, mulf, cmp;
};
struct rn_fplan {
    struct rn_fstage bs, bn, ew_relu;
    const struct rn_lut *lut;
    bool ew, ew_mul, e_half;    /* an EW operand; multiplied; its raw bits are fp16 (else fp32) */
    uint32_t ew_algo;
    bool cvt_offset_first;      /* OUT_CVT CVT_TYPE 1 */
    float scale, off, pow2;     /* pow2: 2^-shift, when use_pow2 */
    uint32_t shift;
    bool use_pow2;
    bool fp16_out;
};
void rn_dpu_fplan(const struct rn_conv *d, const struct rn_lut *lut, struct rn_fplan *q);
/*
 * The results of the 65536 fp16 inputs as far as computed, for a task without an EW operand
 * whose BRDMA operand does not change (known[] zeroed when the plan or the operand changes).
 */
struct rn_fmemo {
    uint8_t known[65536];
    uint32_t value[65536];
};
/*
 * n elements of one channel: in[i] the fp16 bits of the main value (low 16 bits), ew[i] the raw
 * EW operand (NULL: none); element i stored at dst + i·stride as fp16 or fp32. memo: NULL, or
 * used when the plan has no EW operand.
 */
void rn_dpu_float_row(const struct rn_fplan *q, struct rn_fmemo *memo, uint32_t bias,
                      const int32_t *in, const int32_t *ew, size_t n, uint8_t *dst,
                      size_t stride);
/* EW operands [channel][pixel] for the forms other than int8 per pixel from the ERDMA (dpu.c). */
bool rn_fetch_ew_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                      int32_t *ew, struct rn_task_outcome *out);

/* The DPU and DPU_RDMA parts of the decode (task.c), shared by convolutions and flying tasks. */
bool rn_decode_dpu(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                   struct rn_task_outcome *out);
bool rn_decode_rdma(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out);

/* Decode and validate; on refusal fills out->error / out->hang (logged) and returns false. */
bool rn_conv_decode(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out);

/* Evaluate the quirks' triggers (quirks.c); false when the task hangs (out->hang). */
bool rn_conv_quirks(struct rn_core *c, uint32_t op_en, struct rn_conv *d,
                    struct rn_task_outcome *out);

/* BRDMA: the bias operand of each of bias_entries channels, or *bias = NULL (pipeline.c). */
bool rn_fetch_bias(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                   int32_t **bias, struct rn_task_outcome *out);

/*
 * The CBUF as the CNA reads it (Q15): byte `byte` of input pixel (y, x), from img, the feature as
 * the fetch stored it ([hi][wi][bpp] bytes; bpp = the geometry's channel bytes); `empty` for
 * bytes no row stored (pipeline.c).
 */
uint8_t rn_cbuf_byte(const struct rn_conv *d, const uint8_t *img, uint32_t y, uint32_t x,
                     uint32_t byte, uint8_t empty);

/*
 * The precisions other than int8 (Q19). cna.c: the feature tile [hp][wp][ci] and the weights
 * ([nk][kh*kw][ci], depthwise [kh*kw][ci]) as int32 elements: integers as values (input
 * converter applied), floats as their raw bits. mac.c: the MAC and the DPU into obuf.
 */
bool rn_cna_fetch_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                       int32_t *tile, uint32_t hp, uint32_t wp, struct rn_task_outcome *out);
bool rn_cna_weights_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d,
                         int32_t *w, uint32_t nk, struct rn_task_outcome *out);
bool rn_mac_wide(struct rn_core *c, const struct rn_mem *m, const struct rn_conv *d, void *obuf,
                 struct rn_task_outcome *out);
/* Tests: every MAC sum of rn_mac_wide() the scalar way, not through the GEMM kernels. */
extern bool rn_mac_scalar_only;

/* Fraction bits of a float CNA precision: fp16 and tf32 10, bf16 7. */
static inline int rn_float_fbits(uint32_t prec)
{
    return prec == RN_CNA_BF16 ? 7 : 10;
}

/* Where row ky of output pixel (y, x)'s window starts in a [hp][wp][ci] tile. */
static inline size_t rn_window_at(const struct rn_conv *d, size_t wp, uint32_t y, uint32_t x,
                                  uint32_t ky)
{
    return (((size_t)y * d->sy + ky) * wp + (size_t)x * d->sx) * d->ci;
}

/*
 * The vector path of rn_mac_wide() for a dense convolution (mac-vec.c): the sums of blocks of
 * RN_MACVEC_PIXELS output pixels from the GEMM kernels. tile and w as rn_mac_wide() holds them
 * (integer values, or the floats' fp32 bits; w [nk][kh·kw·ci]). Setup returns NULL when its
 * buffers cannot be had (out->error set). The integer sums are always exact; a float sum comes
 * only when the kernels computed it exactly (rn_macvec_float() false: the caller sums it).
 */
#define RN_MACVEC_PIXELS 16
struct rn_macvec;
struct rn_macvec *rn_macvec_setup(struct rn_core *c, const struct rn_conv *d,
                                  const int32_t *tile, size_t ntile, const int32_t *w,
                                  uint32_t nk, struct rn_task_outcome *out);
/* The sums of output pixels p0 + i (y·Wo + x), i < np <= RN_MACVEC_PIXELS. */
void rn_macvec_block(struct rn_macvec *v, const struct rn_conv *d, const int32_t *tile, size_t wp,
                     size_t p0, uint32_t np);
/*
 * Pixel p0 + i of the block: its integer sums with the nk kernels, its window sum (CPEND); its
 * float sums rounded to fp32, each valid where fits[o] (else the caller sums it).
 */
const int64_t *rn_macvec_sums(struct rn_macvec *v, uint32_t i);
int64_t rn_macvec_wsum(const struct rn_macvec *v, uint32_t i);
const float *rn_macvec_floats(struct rn_macvec *v, uint32_t i, const uint8_t **fits);
/* Round sign * mag * 2^lsb to fp32 (to nearest, ties to even); mag: n little-endian limbs. */
float rn_round_f32(const uint64_t *mag, int n, int lsb, bool neg);

/* Run a decoded convolution through fetch, MAC, DPU and WDMA. */
void rn_conv_execute(struct rn_core *c, const struct rn_mem *mem, const struct rn_conv *d,
                     struct rn_task_outcome *out);

#endif
