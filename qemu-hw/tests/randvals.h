/* Random test values with their edge cases: ±0, ±inf, quiet and signalling NaNs, subnormals,
 * the largest finite values (GLib's GRand). */
#ifndef RKNPU_RANDVALS_H
#define RKNPU_RANDVALS_H

#include <glib.h>
#include <stdint.h>

#include "fp16.h"

/* A random half: mostly any bits, a quarter of the time an edge value. */
static inline uint16_t random_half(GRand *r)
{
    static const uint16_t edge[] = { 0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01,
                                     0x0001, 0x83FF, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00 };
    if (g_rand_int_range(r, 0, 4) == 0) {
        return edge[g_rand_int_range(r, 0, G_N_ELEMENTS(edge))];
    }
    return (uint16_t)g_rand_int(r);
}

/* A random fp32: edge values, any bits, or an ordinary number in [-8, 8). */
static inline uint32_t random_f32(GRand *r)
{
    static const uint32_t edge[] = { 0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000,
                                     0x7F800001, 0x00000001, 0x3F800000, 0xBF800000, 0x477FE000,
                                     0x00800000, 0x7F7FFFFF, 0x38800000, 0x33800000 };
    switch (g_rand_int_range(r, 0, 4)) {
    case 0: return edge[g_rand_int_range(r, 0, G_N_ELEMENTS(edge))];
    case 1: return g_rand_int(r);
    default: return rn_f32_bits((float)g_rand_double_range(r, -8, 8));
    }
}

#endif
