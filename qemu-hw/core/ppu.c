/*
 * PPU_RDMA → PPU → memory: standalone pool tasks (op_en PPU | PPU_RDMA, no CNA/CORE/DPU).
 * Register decoding with every refusal explained in the log, the quirks' effects, and the
 * arithmetic of HARDWARE-UNKNOWNS.md Q16.
 */
#include <float.h>
#include <string.h>

#include "fp16.h"
#include "hwchoices.h"
#include "internal.h"
#include "ppu.h"

#define R(name) REG(c, name)
#define F(v, blk, reg, f) RN_FX(v, blk, reg, f)

/* ---- Q16 arithmetic helpers ---- */

float rn_ppu_recip_fp17(uint32_t reg)
{
    uint32_t e = (reg >> 10) & 0x3F, fr = reg & 0x3FF;
    float r;
    if (!e) {
        return 0.0f;
    }
    /* 2^(e-31) for e in 1..63 is a binary32 normal: exact */
    r = (float)(1024 + fr) / 1024.0f;
    for (; e > 31; e--) {
        r *= 2.0f;
    }
    for (; e < 31; e++) {
        r *= 0.5f;
    }
    return (reg >> 16) & 1 ? -r : r;
}

/* One binary32 operation, rounded to binary32 however the compiler evaluates floats. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define F32(x) (x)
#else
static float f32_round(float x)
{
    volatile float r = x;
    return r;
}
#define F32(x) f32_round(x)
#endif

uint16_t rn_ppu_avg_fp16(float sum, uint32_t recip_w_reg, uint32_t recip_h_reg)
{
    float a = F32(sum * rn_ppu_recip_fp17(recip_w_reg));
    uint16_t h = rn_float_to_half(F32(a * rn_ppu_recip_fp17(recip_h_reg)));
    return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) ? 0x7E00 : h;   /* one NaN */
}

int32_t rn_ppu_avg_int(int64_t sum, uint32_t recip_w_reg, uint32_t recip_h_reg, int32_t lo,
                       int32_t hi)
{
    /* |sum| <= 256 · 2^15 and both factors < 2^17: the product fits 2^57 */
    int64_t p = sum * (int64_t)(recip_w_reg & 0x1FFFF) * (int64_t)(recip_h_reg & 0x1FFFF);
    return (int32_t)rn_clamp(rn_round_shift(p, 32, false), lo, hi);
}

/* ---- the task ---- */

struct rn_pool {
    uint32_t iw, ih, ch, ow, oh;        /* input W/H/C, output W/H (output C = input C) */
    uint32_t kw, kh, sx, sy, pl, pt, pr, pb;
    uint32_t method, prec;
    uint32_t eb, lanes, nsurf;          /* element bytes, elements an atom, 16-byte surfaces */
    uint32_t pad;                       /* pad element: low eb·8 bits of PADDING_VALUE_1_CFG */
    uint32_t recip_w, recip_h;
    uint32_t src, line, surf, dst, dst_surf;   /* TASK_DMA_BASE added */
    bool zero;                          /* int32/fp32 processing: zeros are written */
    bool first_only;                    /* quirk ppu-kernel16-pad7 */
};

static bool refuse(struct rn_core *c, struct rn_task_outcome *out, enum rn_log_kind kind,
                   const char *why)
{
    rn_logf(c, kind, "rknpu: pool task refused: %s", why);
    out->error = RN_ERR_DMA_READ;
    return false;
}

/* The (PROC_PRECISION, PPU_RDMA IN_PRECISION) pairs with a hardware measurement (Q16). */
static const char *precision_unimp(uint32_t prec, uint32_t width, uint32_t method)
{
    switch (prec) {
    case RN_PPU_INT8:
        if (width == 0) {
            return "int8 pooling with PPU_RDMA IN_PRECISION 0 (boards return wrong values)";
        }
        if (width == 3 && method == RN_POOL_AVG) {
            return "int8 average with PPU_RDMA IN_PRECISION 3 (unstable on boards)";
        }
        return NULL;
    case RN_PPU_INT16:
    case RN_PPU_FP16:
        return width == 2 ? NULL : "16-bit pooling with PPU_RDMA IN_PRECISION other than 2";
    case RN_PPU_INT32:
    case RN_PPU_FP32:
        return width == 3 ? NULL : "32-bit pooling with PPU_RDMA IN_PRECISION other than 3";
    default:
        return "PPU PROC_PRECISION other than int8/int16/fp16/int32/fp32";
    }
}

static bool decode(struct rn_core *c, uint32_t op_en, struct rn_pool *p,
                   struct rn_task_outcome *out)
{
    uint32_t mode = R(PPU_OPERATION_MODE_CFG), fmt = R(PPU_DATA_FORMAT);
    uint32_t kern = R(PPU_POOLING_KERNEL_CFG), pad = R(PPU_POOLING_PADDING_CFG);
    uint32_t misc = R(PPU_MISC_CTRL), base = R(PC_TASK_DMA_BASE_ADDR) & ~0xFu;
    uint32_t width = F(R(PPU_RDMA_DATA_FORMAT), PPU_RDMA, DATA_FORMAT, IN_PRECISION);
    const char *why;
    uint64_t in_bytes, out_bytes, work;

    memset(p, 0, sizeof(*p));
    if (op_en & (RN_OPEN_CNA | RN_OPEN_CORE | RN_OPEN_DPU | RN_OPEN_DPU_RDMA)) {
        return refuse(c, out, RN_LOG_UNIMP, "PPU in a CNA/CORE/DPU pipeline (DPU->PPU flying)");
    }
    if (!(op_en & RN_OPEN_PPU)) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "PPU_RDMA enabled without the PPU");
    }
    if (!(op_en & RN_OPEN_PPU_RDMA) || !F(mode, PPU, OPERATION_MODE_CFG, FLYING_MODE) ||
        F(fmt, PPU, DATA_FORMAT, DPU_FLYIN)) {
        return refuse(c, out, RN_LOG_UNIMP, "PPU input from the DPU (no PPU_RDMA, FLYING_MODE 0 "
                      "or DPU_FLYIN 1)");
    }
    if (F(mode, PPU, OPERATION_MODE_CFG, INDEX_EN) ||
        F(mode, PPU, OPERATION_MODE_CFG, NOTCH_ADDR)) {
        return refuse(c, out, RN_LOG_UNIMP, "PPU INDEX_EN or NOTCH_ADDR");
    }
    if (F(misc, PPU, MISC_CTRL, NONALIGN) || F(misc, PPU, MISC_CTRL, MC_SURF_OUT)) {
        return refuse(c, out, RN_LOG_UNIMP, "PPU MISC_CTRL NONALIGN or MC_SURF_OUT");
    }
    p->method = F(mode, PPU, OPERATION_MODE_CFG, POOLING_METHOD);
    if (p->method > RN_POOL_MIN) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "POOLING_METHOD 3");
    }
    p->prec = F(fmt, PPU, DATA_FORMAT, PROC_PRECISION);
    if ((why = precision_unimp(p->prec, width, p->method))) {
        return refuse(c, out, RN_LOG_UNIMP, why);
    }
    p->zero = p->prec == RN_PPU_INT32 || p->prec == RN_PPU_FP32;
    p->eb = p->prec == RN_PPU_INT8 ? 1 : p->zero ? 4 : 2;
    p->lanes = 16 / p->eb;

    p->iw = F(R(PPU_DATA_CUBE_IN_WIDTH), PPU, DATA_CUBE_IN_WIDTH, CUBE_IN_WIDTH) + 1;
    p->ih = F(R(PPU_DATA_CUBE_IN_HEIGHT), PPU, DATA_CUBE_IN_HEIGHT, CUBE_IN_HEIGHT) + 1;
    p->ch = F(R(PPU_DATA_CUBE_IN_CHANNEL), PPU, DATA_CUBE_IN_CHANNEL, CUBE_IN_CHANNEL) + 1;
    p->ow = F(R(PPU_DATA_CUBE_OUT_WIDTH), PPU, DATA_CUBE_OUT_WIDTH, CUBE_OUT_WIDTH) + 1;
    p->oh = F(R(PPU_DATA_CUBE_OUT_HEIGHT), PPU, DATA_CUBE_OUT_HEIGHT, CUBE_OUT_HEIGHT) + 1;
    if (F(R(PPU_DATA_CUBE_OUT_CHANNEL), PPU, DATA_CUBE_OUT_CHANNEL, CUBE_OUT_CHANNEL) + 1 !=
        p->ch) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "PPU output channels differ from its input's");
    }
    if (F(R(PPU_RDMA_CUBE_IN_WIDTH), PPU_RDMA, CUBE_IN_WIDTH, CUBE_IN_WIDTH) + 1 != p->iw ||
        F(R(PPU_RDMA_CUBE_IN_HEIGHT), PPU_RDMA, CUBE_IN_HEIGHT, CUBE_IN_HEIGHT) + 1 != p->ih ||
        F(R(PPU_RDMA_CUBE_IN_CHANNEL), PPU_RDMA, CUBE_IN_CHANNEL, CUBE_IN_CHANNEL) + 1 != p->ch) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "PPU_RDMA cube differs from the PPU's input");
    }
    p->kw = F(kern, PPU, POOLING_KERNEL_CFG, KERNEL_WIDTH) + 1;
    p->kh = F(kern, PPU, POOLING_KERNEL_CFG, KERNEL_HEIGHT) + 1;
    p->sx = F(kern, PPU, POOLING_KERNEL_CFG, KERNEL_STRIDE_WIDTH) + 1;
    p->sy = F(kern, PPU, POOLING_KERNEL_CFG, KERNEL_STRIDE_HEIGHT) + 1;
    p->pl = F(pad, PPU, POOLING_PADDING_CFG, PAD_LEFT);
    p->pt = F(pad, PPU, POOLING_PADDING_CFG, PAD_TOP);
    p->pr = F(pad, PPU, POOLING_PADDING_CFG, PAD_RIGHT);
    p->pb = F(pad, PPU, POOLING_PADDING_CFG, PAD_BOTTOM);
    if ((uint64_t)(p->ow - 1) * p->sx + p->kw > (uint64_t)p->pl + p->iw + p->pr ||
        (uint64_t)(p->oh - 1) * p->sy + p->kh > (uint64_t)p->pt + p->ih + p->pb) {
        return refuse(c, out, RN_LOG_GUEST_ERROR,
                      "PPU output cube needs windows past the padded input");
    }
    p->nsurf = (p->ch + p->lanes - 1) / p->lanes;
    in_bytes = (uint64_t)p->nsurf * p->ih * p->iw * 16;
    out_bytes = (uint64_t)p->nsurf * p->oh * p->ow * 16;
    work = out_bytes * p->kw * p->kh;
    if (in_bytes > RN_MAX_BUF_BYTES || out_bytes > RN_MAX_BUF_BYTES || work > RN_MAX_TASK_MACS) {
        return refuse(c, out, RN_LOG_GUEST_ERROR, "pool cube larger than 64 MiB");
    }
    p->pad = R(PPU_PADDING_VALUE_1_CFG) & (p->eb == 1 ? 0xFFu : 0xFFFFu);
    p->recip_w = F(R(PPU_RECIP_KERNEL_WIDTH), PPU, RECIP_KERNEL_WIDTH, RECIP_KERNEL_WIDTH);
    p->recip_h = F(R(PPU_RECIP_KERNEL_HEIGHT), PPU, RECIP_KERNEL_HEIGHT, RECIP_KERNEL_HEIGHT);
    p->src = R(PPU_RDMA_SRC_BASE_ADDR) + base;
    p->line = R(PPU_RDMA_SRC_LINE_STRIDE) & ~0xFu;
    p->surf = R(PPU_RDMA_SRC_SURF_STRIDE) & ~0xFu;
    p->dst = (R(PPU_DST_BASE_ADDR) & ~0xFu) + base;
    p->dst_surf = R(PPU_DST_SURF_STRIDE) & ~0xFu;
    return true;
}

/* The quirks of Q15 that concern the PPU; false when the task hangs. */
static bool pool_quirks(struct rn_core *c, struct rn_pool *p, struct rn_task_outcome *out)
{
    if (rn_quirk_ppu_width_hang(p->kw, p->kh, p->sx, p->sy, p->iw) &&
        rn_quirk_fire(c, out, RN_QUIRK_PPU_WIDTH_HANG,
                      "%ux%u stride-1 pool over %u columns: boards hang past %u (hangs until "
                      "reset)", p->kw, p->kh, p->iw, p->kw <= 4 ? 34 : 20)) {
        out->hang = true;
        return false;
    }
    if (rn_quirk_ppu_kernel16_pad7(p->kw, p->kh, p->pl, p->pr, p->pt, p->pb) &&
        rn_quirk_fire(c, out, RN_QUIRK_PPU_KERNEL16_PAD7,
                      "%ux%u window with pads %u/%u/%u/%u (l/t/r/b): every output is the first "
                      "input element", p->kw, p->kh, p->pl, p->pt, p->pr, p->pb)) {
        p->first_only = true;
    }
    return true;
}

static uint32_t le16(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8;
}

static int32_t int_elem(const struct rn_pool *p, const uint8_t *e)
{
    return p->eb == 1 ? (int8_t)e[0] : (int16_t)le16(e);
}

/* One output atom: window of (oy, ox) over surface `img` (ih·iw atoms) into dst[16]. */
static void pool_atom(const struct rn_pool *p, const uint8_t *img, uint32_t oy, uint32_t ox,
                      uint8_t *dst)
{
    int64_t isum[16] = { 0 };
    int32_t icur[16] = { 0 };
    float fsum[16] = { 0 };
    uint16_t hcur[16] = { 0 };
    uint8_t pad_atom[16];
    bool fp = p->prec == RN_PPU_FP16, first = true;

    for (uint32_t l = 0; l < p->lanes; l++) {   /* the pad element in every lane */
        for (uint32_t b = 0; b < p->eb; b++) {
            pad_atom[l * p->eb + b] = (uint8_t)(p->pad >> (8 * b));
        }
    }
    for (uint32_t ky = 0; ky < p->kh; ky++) {
        int64_t y = (int64_t)oy * p->sy - p->pt + ky;
        for (uint32_t kx = 0; kx < p->kw; kx++, first = false) {
            int64_t x = (int64_t)ox * p->sx - p->pl + kx;
            const uint8_t *e = y >= 0 && y < p->ih && x >= 0 && x < p->iw
                                   ? img + ((size_t)y * p->iw + (size_t)x) * 16 : pad_atom;
            for (uint32_t l = 0; l < p->lanes; l++) {
                const uint8_t *v = e + l * p->eb;
                if (fp && p->method == RN_POOL_AVG) {
                    float f = rn_half_to_float((uint16_t)le16(v));
                    fsum[l] = first ? f : F32(fsum[l] + f);
                } else if (fp) {
                    uint16_t h = (uint16_t)le16(v);
                    float f = rn_half_to_float(h), cur = rn_half_to_float(hcur[l]);
                    if (first || (p->method == RN_POOL_MAX ? f > cur : f < cur)) {
                        hcur[l] = h;
                    }
                } else if (p->method == RN_POOL_AVG) {
                    isum[l] += int_elem(p, v);
                } else {
                    int32_t i = int_elem(p, v);
                    if (first || (p->method == RN_POOL_MAX ? i > icur[l] : i < icur[l])) {
                        icur[l] = i;
                    }
                }
            }
        }
    }
    for (uint32_t l = 0; l < p->lanes; l++) {
        uint32_t v;
        if (fp) {
            v = p->method == RN_POOL_AVG ? rn_ppu_avg_fp16(fsum[l], p->recip_w, p->recip_h)
                                         : hcur[l];
        } else if (p->method == RN_POOL_AVG) {
            v = (uint32_t)rn_ppu_avg_int(isum[l], p->recip_w, p->recip_h,
                                         p->eb == 1 ? INT8_MIN : INT16_MIN,
                                         p->eb == 1 ? INT8_MAX : INT16_MAX);
        } else {
            v = (uint32_t)icur[l];
        }
        for (uint32_t b = 0; b < p->eb; b++) {
            dst[l * p->eb + b] = (uint8_t)(v >> (8 * b));
        }
    }
}

/*
 * The fast path of pool_atom(): the same window in the same order (ky, then kx), each method and
 * element type a loop over the lanes without branches, which the compiler vectorises. fp16 max
 * and min compare integer keys that order the halves as their floats do (±0 equal); a NaN is
 * never taken, and a NaN first element is never replaced, as the float compares behave.
 */
bool rn_ppu_scalar_only;

#define NAN_NEVER (-0x10000)   /* key of a NaN candidate: below every half's */
#define NAN_KEEPS 0x10000      /* key of a NaN held from the first element: above them */

static inline int32_t half_key(uint32_t h, bool neg, int32_t nan_key)
{
    int32_t mag = (int32_t)(h & 0x7FFF), k = h & 0x8000 ? -mag : mag;
    return mag > 0x7C00 ? nan_key : neg ? -k : k;
}

static void fp16_extreme(const uint8_t *const *at, uint32_t n, bool min, uint8_t *dst)
{
    int32_t kcur[8];
    uint32_t hcur[8];
    for (uint32_t l = 0; l < 8; l++) {
        hcur[l] = le16(at[0] + 2 * l);
        kcur[l] = half_key(hcur[l], min, NAN_KEEPS);
    }
    for (uint32_t i = 1; i < n; i++) {
        for (uint32_t l = 0; l < 8; l++) {
            uint32_t h = le16(at[i] + 2 * l);
            int32_t k = half_key(h, min, NAN_NEVER);
            bool take = k > kcur[l];
            kcur[l] = take ? k : kcur[l];
            hcur[l] = take ? h : hcur[l];
        }
    }
    for (uint32_t l = 0; l < 8; l++) {
        dst[2 * l] = (uint8_t)hcur[l];
        dst[2 * l + 1] = (uint8_t)(hcur[l] >> 8);
    }
}

static void fp16_average(const struct rn_pool *p, const uint8_t *const *at, uint32_t n,
                         uint8_t *dst)
{
    float sum[8];
    for (uint32_t l = 0; l < 8; l++) {
        sum[l] = rn_half_to_float((uint16_t)le16(at[0] + 2 * l));
    }
    for (uint32_t i = 1; i < n; i++) {
        for (uint32_t l = 0; l < 8; l++) {
            sum[l] = F32(sum[l] + rn_half_to_float((uint16_t)le16(at[i] + 2 * l)));
        }
    }
    for (uint32_t l = 0; l < 8; l++) {
        uint16_t h = rn_ppu_avg_fp16(sum[l], p->recip_w, p->recip_h);
        dst[2 * l] = (uint8_t)h;
        dst[2 * l + 1] = (uint8_t)(h >> 8);
    }
}

/* Lane l of an int8 (eb 1) or int16 (eb 2) atom; eb a constant once inlined. */
static inline int32_t lane(const uint8_t *a, uint32_t l, uint32_t eb)
{
    return eb == 1 ? (int8_t)a[l] : (int16_t)le16(a + 2 * l);
}

static inline void int_pool(const struct rn_pool *p, const uint8_t *const *at, uint32_t n,
                            uint32_t eb, uint8_t *dst)
{
    uint32_t lanes = 16 / eb;
    int32_t cur[16];
    int64_t sum[16];
    for (uint32_t l = 0; l < lanes; l++) {
        cur[l] = lane(at[0], l, eb);
        sum[l] = cur[l];
    }
    for (uint32_t i = 1; i < n; i++) {
        for (uint32_t l = 0; l < lanes; l++) {
            int32_t v = lane(at[i], l, eb);
            if (p->method == RN_POOL_AVG) {
                sum[l] += v;
            } else {
                bool take = p->method == RN_POOL_MAX ? v > cur[l] : v < cur[l];
                cur[l] = take ? v : cur[l];
            }
        }
    }
    for (uint32_t l = 0; l < lanes; l++) {
        uint32_t v = p->method != RN_POOL_AVG ? (uint32_t)cur[l]
                   : (uint32_t)rn_ppu_avg_int(sum[l], p->recip_w, p->recip_h,
                                              eb == 1 ? INT8_MIN : INT16_MIN,
                                              eb == 1 ? INT8_MAX : INT16_MAX);
        dst[l * eb] = (uint8_t)v;
        if (eb == 2) {
            dst[l * eb + 1] = (uint8_t)(v >> 8);
        }
    }
}

/* One output atom as pool_atom() computes it; pad: the pad element in every lane. */
static void pool_atom_fast(const struct rn_pool *p, const uint8_t *img, const uint8_t *pad,
                           uint32_t oy, uint32_t ox, uint8_t *dst)
{
    const uint8_t *at[16 * 16];
    uint32_t n = 0;
    for (uint32_t ky = 0; ky < p->kh; ky++) {
        int64_t y = (int64_t)oy * p->sy - p->pt + ky;
        for (uint32_t kx = 0; kx < p->kw; kx++) {
            int64_t x = (int64_t)ox * p->sx - p->pl + kx;
            at[n++] = y >= 0 && y < p->ih && x >= 0 && x < p->iw
                          ? img + ((size_t)y * p->iw + (size_t)x) * 16 : pad;
        }
    }
    if (p->prec == RN_PPU_FP16) {
        if (p->method == RN_POOL_AVG) {
            fp16_average(p, at, n, dst);
        } else {
            fp16_extreme(at, n, p->method == RN_POOL_MIN, dst);
        }
    } else if (p->eb == 1) {
        int_pool(p, at, n, 1, dst);
    } else {
        int_pool(p, at, n, 2, dst);
    }
}

static bool read_input(struct rn_core *c, const struct rn_mem *m, const struct rn_pool *p,
                       uint8_t *ibuf, struct rn_task_outcome *out)
{
    size_t row = (size_t)p->iw * 16;
    for (uint32_t s = 0; s < p->nsurf; s++) {
        for (uint32_t y = 0; y < p->ih; y++) {
            uint32_t a = (uint32_t)(p->src + (uint64_t)s * p->surf + (uint64_t)y * p->line);
            out->st.bytes_read += row;
            if (!rn_dma_get(c, m, a, ibuf + ((size_t)s * p->ih + y) * row, row, out)) {
                return false;
            }
        }
    }
    return true;
}

static void fill_stats(const struct rn_pool *p, struct rn_task_stats *st)
{
    st->pool = true;
    st->in_w = p->iw;
    st->in_h = p->ih;
    st->in_c = p->ch;
    st->out_w = p->ow;
    st->out_h = p->oh;
    st->out_c = p->ch;
    st->kw = p->kw;
    st->kh = p->kh;
    st->stride = p->sx;
}

void rn_ppu_run(struct rn_core *c, const struct rn_mem *mem, uint32_t op_en,
                struct rn_task_outcome *out)
{
    struct rn_pool p;
    size_t isurf, osurf;
    uint8_t *ibuf, *obuf, pad[16];

    out->st.pool = true;
    if (!decode(c, op_en, &p, out)) {
        return;
    }
    fill_stats(&p, &out->st);
    if (!pool_quirks(c, &p, out)) {
        return;
    }
    isurf = (size_t)p.ih * p.iw * 16;
    osurf = (size_t)p.oh * p.ow * 16;
    ibuf = rn_scratch(c, RN_BUF_INPUT, p.nsurf * isurf);
    obuf = rn_scratch(c, RN_BUF_OUT, p.nsurf * osurf);
    if (!ibuf || !obuf) {
        out->error |= RN_ERR_DMA_READ;
        return;
    }
    if (!read_input(c, mem, &p, ibuf, out)) {
        return;
    }
    for (uint32_t b = 0; b < 16; b++) {
        pad[b] = (uint8_t)(p.pad >> (8 * (b % p.eb)));
    }
    for (uint32_t s = 0; s < p.nsurf; s++) {
        const uint8_t *img = ibuf + s * isurf;
        for (uint32_t oy = 0; oy < p.oh; oy++) {
            for (uint32_t ox = 0; ox < p.ow; ox++) {
                /* a window is up to 16x16 atoms, a row up to 8192 windows */
                if (ox % RN_CANCEL_BLOCK == 0 && rn_cancelled(c)) {
                    return;
                }
                uint8_t *dst = obuf + s * osurf + ((size_t)oy * p.ow + ox) * 16;
                if (p.zero) {
                    memset(dst, 0, 16);
                } else if (p.first_only) {
                    memcpy(dst, img, 16);
                } else if (rn_ppu_scalar_only) {
                    pool_atom(&p, img, oy, ox, dst);
                } else {
                    pool_atom_fast(&p, img, pad, oy, ox, dst);
                }
            }
        }
    }
    out->wrote = true;   /* from here on the task runs to its end (see write_output) */
    for (uint32_t s = 0; s < p.nsurf; s++) {
        uint32_t a = (uint32_t)(p.dst + (uint64_t)s * p.dst_surf);
        out->st.bytes_written += osurf;
        if (mem->write(mem->opaque, a, obuf + s * osurf, osurf)) {
            out->error |= RN_ERR_DMA_WRITE;
            return;
        }
    }
}
