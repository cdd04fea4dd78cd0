/* Hot integer loops of the pipeline, compiled per ISA and picked at run time. */
#ifndef RKNPU_KERNELS_H
#define RKNPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Patch and weight rows are zero-padded to a multiple of this many bytes: the 4-byte groups of
 * vpdpbusd and SDOT/SUDOT, the byte pairs of vpmaddwd. Every kernel path takes any such kp (the
 * wide instructions' tails are the kernels' business), so the padding wastes at most 3 MACs a row.
 */
#define RN_KP_ALIGN 4

/*
 * acc[p * nout_pad + o] = sum_i patch[p][i] * w[o][i] for p < npix, o < nout_pad, where patch
 * rows are kp bytes of (input + 128) and w rows are kp int8 bytes; kp % RN_KP_ALIGN == 0 and
 * nout_pad % 4 == 0. The weights are passed as rn_gemm_pack laid them out (once per task).
 * The kernel reads the npix * kp patch bytes and nothing past them.
 */
void rn_gemm_u8s8(const uint8_t *patch, size_t npix, const int8_t *packed, size_t nout_pad,
                  size_t kp, int32_t *acc);

/* Bytes rn_gemm_pack writes for nout_pad rows of kp weights. */
size_t rn_gemm_packed_size(size_t nout_pad, size_t kp);

/* Lay the weight rows w[o][i] out in the order the GEMM of this host reads them. */
void rn_gemm_pack(const int8_t *w, size_t nout_pad, size_t kp, int8_t *packed);

/*
 * rn_gemm_pack with CPEND folded in, where this host's GEMM multiplies int16 weights (AVX2): each
 * row's first kreal weights become w + ow_op, so the GEMM's sum over a patch row of (input + 128)
 * is acc + ow_op * wsum + 128 * (sum of the row's folded weights). |ow_op| <= 32640. False (and
 * nothing written) where the path's weights stay int8: use rn_gemm_pack and the window sums.
 */
bool rn_gemm_pack_fold(const int8_t *w, size_t nout_pad, size_t kp, size_t kreal, int32_t ow_op,
                       int8_t *packed);

/* Depthwise tap: acc[c] += (src[c] - 128) * w[c]; sum[c] += src[c] - 128, for c < n. */
void rn_dw_tap(const uint8_t *src, const int8_t *w, int32_t *acc, int32_t *sum, size_t n);

/*
 * Depthwise, all kh x kw taps of one output pixel: rn_dw_tap for each tap (ky, kx) with
 * src + ky * row + kx * col and w + (ky * kw + kx) * wstride (the sums stay in registers).
 */
void rn_dw_pixel(const uint8_t *src, size_t row, size_t col, uint32_t kh, uint32_t kw,
                 const int8_t *w, size_t wstride, int32_t *acc, int32_t *sum, size_t n);

/*
 * Depthwise with CPEND folded into the weights, for the DPU fast path: acc[i * astride + c] =
 * sum over taps t of (x_t[c] - 128) * w[t][c] + ow_op * sum over t of (x_t[c] - 128), i.e. the
 * DPU's acc + ow_op * wsum, for channels c < n of output pixels i < npix (x_t: the tile's bytes,
 * input + 128; pixel i's window at src + i * step, tap (ky, kx) at + ky * row + kx * col). Int32
 * sums wrap: exact where the task's fits32 holds. The weights as rn_dw_fold_pack laid them out.
 * rn_dw_fold_available(): whether this host's path has the kernel (else rn_dw_pixel).
 */
bool rn_dw_fold_available(void);
size_t rn_dw_fold_packed_size(size_t taps, size_t n);   /* int16 entries, then n int32 */
void rn_dw_fold_pack(const int8_t *w, size_t wstride, size_t taps, size_t n, int32_t ow_op,
                     int16_t *packed);
void rn_dw_fold(const uint8_t *src, size_t step, size_t row, size_t col, uint32_t kh, uint32_t kw,
                const int16_t *packed, int32_t *acc, size_t astride, size_t n, size_t npix);

/*
 * Parameters of the DPU fast path: CPEND, CLIP_TRUNCATE, bias, optional EW add, OUT_CVT; the
 * EW and OUT_CVT shifts round half to even.
 */
struct rn_dpu_fast {
    int32_t ow_op;                 /* CPEND operand, int16 */
    uint32_t trunc;                /* CLIP_TRUNCATE of acc + CPEND, 0..62 */
    bool trunc_half_up;            /* its ties: up, else to even */
    bool ew;                       /* add a converted EW operand */
    int32_t ew_offset, ew_scale;   /* e' = RNE(((e + offset) * scale) >> shift); |offset| <= 2^30, */
    uint32_t ew_shift;             /* scale int16, shift 1..62 */
    int32_t out_scale, out_offset; /* out = sat8(RNE((v * scale) >> shift) + offset); scale int16 */
    uint32_t out_shift;            /* 1..62 */
    /*
     * The caller proved |acc + ow_op * wsum| + |bias| < 2^31 on every lane of the task (the
     * int8 MAC's range), so a path may sum in int32; false: no such bound is known.
     */
    bool fits32;
};

/* One 16-lane atom: out[l] from round(acc[l] + ow_op * wsum[l], trunc) + bias[l] (+ e'[l]). */
void rn_dpu_fast_atom(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                      const int32_t *wsum, const int8_t *e, int8_t *out);

/*
 * rn_dpu_fast_atom for n atoms: atom i reads acc, bias, wsum + 16 * i and e + i * e_stride and
 * writes out + i * out_stride.
 */
void rn_dpu_fast_atoms(const struct rn_dpu_fast *f, const int32_t *acc, const int32_t *bias,
                       const int32_t *wsum, const int8_t *e, size_t e_stride, int8_t *out,
                       size_t out_stride, size_t n);

/*
 * rn_dpu_fast_atoms for npix conv pixels of one GEMM block, natoms atoms each: pixel i's lane o
 * has acc = acc[i * acc_stride + o] - 128 * wsum_w[o] and wsum = s[i]; bias[o]; its EW operand
 * at e + atom * e_stride + i * 16 (e is not read without f->ew) and its output at
 * out + atom * out_stride + i * 16. acc_stride >= 16 * natoms.
 */
void rn_dpu_conv(const struct rn_dpu_fast *f, const int32_t *acc, size_t acc_stride,
                 const int32_t *wsum_w, const int32_t *bias, const int32_t *s, const int8_t *e,
                 size_t e_stride, int8_t *out, size_t out_stride, size_t natoms, size_t npix);

/*
 * A conv output pixel's sums for the DPU: fix[o] = acc[o] - 128 * wsum_w[o] (undoing the +128 of
 * the inputs; wsum_w[o] is kernel o's weight sum) for o < nk and 0 for nk <= o < n; wsum[o] = s
 * (the window sum) for o < n.
 */
void rn_conv_fix(const int32_t *acc, const int32_t *wsum_w, size_t nk, size_t n, int32_t s,
                 int32_t *fix, int32_t *wsum);

/* Sum of n bytes; of n signed bytes. */
uint32_t rn_sum_u8(const uint8_t *p, size_t n);
int32_t rn_sum_s8(const int8_t *p, size_t n);

/*
 * The wide MAC of int16 and the floats (mac.c): acc[p * nout + o] = sum over k < kp of
 * a[p * lda + k] * w[o][k], for p < npix and o < nout, in int64 modulo 2^64 (exact while the
 * caller keeps every sum below 2^63). The weights as rn_wgemm_pack laid out nout rows of kp.
 */
void rn_wgemm(const int32_t *a, size_t lda, size_t npix, const int32_t *packed, size_t nout,
              size_t kp, int64_t *acc);

/* Bytes rn_wgemm_pack writes for nout rows of kp weights. */
size_t rn_wgemm_packed_size(size_t nout, size_t kp);

void rn_wgemm_pack(const int32_t *w, size_t nout, size_t kp, int32_t *packed);

/*
 * Name of the implementation in use, picked once per process: the best this CPU runs of
 * "avx512vnni", "avxvnni", "avx2" (x86-64), "neon-i8mm", "neon-dot", "neon" (arm64) and
 * "generic", or the one RKNPU_ISA names when the CPU runs it (RKNPU_ISA=X never picks a path
 * better than X: a lesser one where the CPU cannot run X).
 */
const char *rn_kernels_isa(void);

#endif
