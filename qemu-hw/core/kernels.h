/* Hot integer loops of the pipeline, compiled per ISA and picked at run time. */
#ifndef RKNPU_KERNELS_H
#define RKNPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define RN_KP_ALIGN 64   /* patch and weight rows are zero-padded to this many bytes */

/*
 * acc[p * nout_pad + o] = sum_i patch[p][i] * w[o][i] for p < npix, o < nout_pad, where patch
 * rows are kp bytes of (input + 128) and w rows are kp int8 bytes; kp % RN_KP_ALIGN == 0 and
 * nout_pad % 4 == 0.
 */
void rn_gemm_u8s8(const uint8_t *patch, size_t npix, const int8_t *w, size_t nout_pad, size_t kp,
                  int32_t *acc);

/* Depthwise tap: acc[c] += (src[c] - 128) * w[c]; sum[c] += src[c] - 128, for c < n. */
void rn_dw_tap(const uint8_t *src, const int8_t *w, int32_t *acc, int32_t *sum, size_t n);

/* Sum of n bytes. */
uint32_t rn_sum_u8(const uint8_t *p, size_t n);

/* Name of the implementation in use ("avx512vnni", "avx2", "generic"). */
const char *rn_kernels_isa(void);

#endif
