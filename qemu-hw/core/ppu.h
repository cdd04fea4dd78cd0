/*
 * The PPU pooling unit fed from memory by PPU_RDMA (standalone pool tasks, op_en 0x60):
 * the model's arithmetic rules of HARDWARE-UNKNOWNS.md Q16, one place each.
 */
#ifndef RKNPU_PPU_H
#define RKNPU_PPU_H

#include <stdbool.h>
#include <stdint.h>

/* PPU DATA_FORMAT.PROC_PRECISION codes (Q16). */
enum { RN_PPU_INT8 = 0, RN_PPU_INT16 = 1, RN_PPU_FP16 = 2, RN_PPU_INT32 = 4, RN_PPU_FP32 = 5 };

/* OPERATION_MODE_CFG.POOLING_METHOD. */
enum { RN_POOL_AVG = 0, RN_POOL_MAX = 1, RN_POOL_MIN = 2 };

/*
 * RECIP_KERNEL_WIDTH/HEIGHT under fp16 processing: "FP17", sign [16], exponent [15:10] with bias
 * 31, fraction [9:0]: r = ±2^(e−31)·(1 + f/1024); e = 0 reads as 0. For e in 1..30 these are the
 * bits of fp16(65536/k) (the fp16 and FP17 biases differ by 16).
 */
float rn_ppu_recip_fp17(uint32_t reg);

/*
 * fp16 average: fp16(fp32(fp32(sum_fp32 · r_w) · r_h)), the sum accumulated in fp32; the binary16
 * rounding is fp16.h's (nearest even, overflow to infinity), every NaN written as 0x7E00.
 */
uint16_t rn_ppu_avg_fp16(float sum, uint32_t recip_w_reg, uint32_t recip_h_reg);

/*
 * Integer average: RNE(sum · RECIP_W · RECIP_H / 2^32) with the registers' 17 bits as unsigned
 * Q16 reciprocals, computed exactly, then saturated to [lo, hi].
 */
int32_t rn_ppu_avg_int(int64_t sum, uint32_t recip_w_reg, uint32_t recip_h_reg, int32_t lo,
                       int32_t hi);

/* Tests: every output atom through the step-by-step loop, not the fast path (same bytes). */
extern bool rn_ppu_scalar_only;

#endif
