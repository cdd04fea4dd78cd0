/*
 * Private to the kernel files (and the kernel tests): one table of entry points per instruction
 * set. kernels.c holds the generic C path, the AVX-512 VNNI path and the run-time choice;
 * kernels-x86.c the AVX2 and AVX-VNNI paths; kernels-arm.c the NEON ones.
 */
#ifndef RKNPU_KERNELS_IMPL_H
#define RKNPU_KERNELS_IMPL_H

#include "kernels.h"

/* The wide MAC's entry points (kernels-wide.c), one set per instruction set. */
struct rn_wide_impl {
    void (*gemm)(const int32_t *, size_t, size_t, const int32_t *, size_t, size_t, int64_t *);
    size_t (*packed_size)(size_t, size_t);
    void (*pack)(const int32_t *, size_t, size_t, int32_t *);
};

extern const struct rn_wide_impl rn_wide_generic;
#if defined(__x86_64__) && defined(__GNUC__)
extern const struct rn_wide_impl rn_wide_avx2, rn_wide_avx512;
#endif
#if defined(__aarch64__)
extern const struct rn_wide_impl rn_wide_neon;
#endif

struct rn_kernel_impl {
    const char *name;   /* what RKNPU_ISA names it by, and rn_kernels_isa() */
    const char *note;   /* how it is encoded or selected, for humans (bench), or NULL */
    void (*gemm)(const uint8_t *, size_t, const int8_t *, size_t, size_t, int32_t *);
    size_t (*packed_size)(size_t, size_t);
    void (*pack)(const int8_t *, size_t, size_t, int8_t *);
    /* rn_gemm_pack_fold, or NULL where the GEMM's weights are int8 */
    void (*pack_fold)(const int8_t *, size_t, size_t, size_t, int32_t, int8_t *);
    void (*dw)(const uint8_t *, const int8_t *, int32_t *, int32_t *, size_t);
    void (*dw_pixel)(const uint8_t *, size_t, size_t, uint32_t, uint32_t, const int8_t *,
                     size_t, int32_t *, int32_t *, size_t);
    uint32_t (*sum)(const uint8_t *, size_t);
    int32_t (*ssum)(const int8_t *, size_t);
    void (*dpu)(const struct rn_dpu_fast *, const int32_t *, const int32_t *, const int32_t *,
                const int8_t *, size_t, int8_t *, size_t, size_t);   /* rn_dpu_fast_atoms */
    void (*fix)(const int32_t *, const int32_t *, size_t, size_t, int32_t, int32_t *,
                int32_t *);
    /* rn_dw_fold, or NULL (the pipeline keeps rn_dw_pixel and the per-pixel DPU) */
    void (*dw_fold)(const uint8_t *, size_t, size_t, size_t, uint32_t, uint32_t, const int16_t *,
                    int32_t *, size_t, size_t, size_t);
    /* rn_dpu_conv in integer lanes, false (nothing written) where the task does not allow it
     * (rn_dpu_int_plan); NULL: never. Otherwise rn_dpu_conv_by_atoms on this table's dpu. */
    bool (*dpu_conv)(const struct rn_dpu_fast *, const int32_t *, size_t, const int32_t *,
                     const int32_t *, const int32_t *, int8_t *, size_t, size_t, size_t);
    const struct rn_wide_impl *wide;   /* rn_wgemm and its packing */
};

/* rn_dpu_conv on table k: its dpu_conv, else (or where that declines) rn_dpu_conv_by_atoms. */
void rn_dpu_conv_on(const struct rn_kernel_impl *k, const struct rn_dpu_fast *f,
                    const int32_t *acc, size_t acc_stride, const int32_t *wsum_w,
                    const int32_t *bias, const int32_t *s, const int8_t *e, size_t e_stride,
                    int8_t *out, size_t out_stride, size_t natoms, size_t npix);

/* rn_dpu_conv through a table's dpu entry, a pixel and up to 16 atoms at a time (kernels.c). */
void rn_dpu_conv_by_atoms(const struct rn_kernel_impl *k, const struct rn_dpu_fast *f,
                          const int32_t *acc, size_t acc_stride, const int32_t *wsum_w,
                          const int32_t *bias, const int32_t *s, const int8_t *e, size_t e_stride,
                          int8_t *out, size_t out_stride, size_t natoms, size_t npix);

/*
 * rn_dw_fold_pack's layout: per 16-channel group g and tap pair j (taps 2j, 2j + 1), 32 int16
 * at (g * pairs + j) * 32: entry 2 * (c % 16) + (t % 2) is w[t][c] + ow_op (0 past the taps and
 * past n); after all groups, n int32 corrections -128 * sum over t of (w[t][c] + ow_op).
 */
#define RN_DW_FOLD_PAIRS(taps) (((taps) + 1) / 2)

/*
 * The DPU fast path in int32 lanes (kernels.c), where f->fits32 makes acc + ow_op * wsum + bias
 * exact in int32 without a clamp: no EW, CLIP_TRUNCATE <= 30, 16 <= out_shift <= 32, |out_offset|
 * < 2^30 (false otherwise). narrow: beyond |v| = v the output saturates whatever v is (it is
 * monotone in v), so v may clamp to [-v, v], where v * |out_scale| + 2^out_shift < 2^31: the
 * OUT_CVT product and its rounding then fit int32 lanes.
 */
struct rn_dpu_int {
    bool narrow;
    int32_t v;
};
bool rn_dpu_int_plan(const struct rn_dpu_fast *f, struct rn_dpu_int *p);

/*
 * For the rn_dw_fold kernels (kernels.c): the taps' offsets (off[taps], kh, kw <= 32) and the
 * correction row after the packed weights; rn_dw_fold_tail: channels c0 .. n one at a time
 * (no load past the tile, as 16-channel vectors would make).
 */
const int32_t *rn_dw_fold_setup(size_t row, size_t col, uint32_t kh, uint32_t kw,
                                const int16_t *packed, size_t n, size_t *off);
void rn_dw_fold_tail(const uint8_t *src, size_t step, const size_t *off, size_t taps,
                     const int16_t *packed, const int32_t *corr, int32_t *acc, size_t astride,
                     size_t c0, size_t n, size_t npix);

/* The generic C table (kernels.c); the per-ISA files fall back on its entries. */
extern const struct rn_kernel_impl rn_kernels_generic;

/*
 * The per-ISA tables, each NULL when this build or this CPU cannot run it (x86-64: AVX2 and
 * AVX-VNNI in kernels-x86.c; arm64: NEON, NEON with SDOT, with I8MM SUDOT in kernels-arm.c).
 */
const struct rn_kernel_impl *rn_kernels_avxvnni(void);
const struct rn_kernel_impl *rn_kernels_avx2(void);
const struct rn_kernel_impl *rn_kernels_neon_i8mm(void);
const struct rn_kernel_impl *rn_kernels_neon_dot(void);
const struct rn_kernel_impl *rn_kernels_neon(void);

/*
 * Weights for the 4-byte dot products (vpdpbusd, SDOT/SUDOT): [o / 16][k / 4][o % 16][k % 4],
 * outputs past nout_pad and bytes past kp zero (kernels.c).
 */
size_t rn_dot16_packed_size(size_t nout_pad, size_t kp);
void rn_dot16_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed);

#if defined(__x86_64__) && defined(__GNUC__)
/* The AVX2 depthwise and byte sums, shared by the AVX-512 VNNI table (CPUs with AVX2 only). */
void rn_avx2_dw(const uint8_t *src, const int8_t *w, int32_t *acc, int32_t *sum, size_t n);
void rn_avx2_dw_pixel(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                      const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n);
uint32_t rn_avx2_sum(const uint8_t *p, size_t n);
int32_t rn_avx2_ssum(const int8_t *p, size_t n);
void rn_avx2_dw_fold(const uint8_t *src, size_t step, size_t row, size_t col, uint32_t kh,
                     uint32_t kw, const int16_t *packed, int32_t *acc, size_t astride, size_t n,
                     size_t npix);
/* rn_dpu_conv in integer lanes; false (nothing written) where the task's values do not allow it */
bool rn_avx2_dpu_conv_i(const struct rn_dpu_fast *f, const int32_t *acc, size_t acc_stride,
                        const int32_t *wsum_w, const int32_t *bias, const int32_t *s, int8_t *out,
                        size_t out_stride, size_t natoms, size_t npix);
void rn_avx2_fix(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n, int32_t s,
                 int32_t *fix, int32_t *wsum);
#endif

/*
 * Every path this build has, best first, and whether this CPU runs it; NULL past the end.
 * rn_kernels_get(name) is the table RKNPU_ISA=name would pick when the CPU runs it, else NULL.
 */
const char *rn_kernels_path(size_t i, bool *runs);
const struct rn_kernel_impl *rn_kernels_get(const char *name);

#endif
