/* IEEE binary16 <-> binary32, exactly and with round-to-nearest-even, in plain C. */
#ifndef RKNPU_FP16_H
#define RKNPU_FP16_H

#include <float.h>
#include <stdint.h>
#include <string.h>

static inline float rn_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t rn_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/*
 * Both conversions are branch-free (selects) so that loops over rows of elements vectorise and
 * random data costs no mispredictions; test-kernels checks them against the step-by-step
 * versions on every half and on the floats at and around every rounding boundary.
 */
static inline float rn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, a = h & 0x7FFFu;
    /* normal, inf, NaN: rebias the exponent (by 224 for exponent 31: it stays all ones) */
    uint32_t normal = (a << 13) + ((a >= 0x7C00 ? 224u : 112u) << 23);
    /* zero or subnormal: man · 2^-24, exactly */
    uint32_t sub = rn_f32_bits((float)a * (1.0f / 16777216.0f));
    return rn_f32_from_bits(sign | (a < 0x400 ? sub : normal));
}

/* Round to nearest even, overflow to infinity, every NaN the quiet 0x7E00 with its sign. */
static inline uint16_t rn_float_to_half(float f)
{
    uint32_t u = rn_f32_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7FFFFFFFu, sub, h;
    /*
     * A normal half: rebias by 15 - 127 and round off 13 bits to nearest even as
     * (x + 0xFFF + bit 13) >> 13 (a carry out of the mantissa moves the exponent on, up to inf).
     */
    uint32_t normal = (a - (112u << 23) + 0xFFFu + ((a >> 13) & 1)) >> 13;
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    /*
     * Under 2^-14, a subnormal half or zero: 0.5 + |f| in binary32 rounds |f| to a multiple of
     * 2^-24 (the float's step there), to nearest even; the fraction field then counts them
     * (1024: the smallest normal).
     */
    sub = rn_f32_bits(rn_f32_from_bits(a) + 0.5f) - 0x3F000000u;
#else
    {   /* the same rounding in integers: the 24-bit significand shifted right by 126 - e */
        uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t s = e < 95 ? 31 : e > 112 ? 14 : 126 - e;
        sub = (m + (1u << (s - 1)) - 1 + ((m >> s) & 1)) >> s;
    }
#endif
    h = a < (113u << 23) ? sub : normal < 0x7C00 ? normal : 0x7C00;
    return (uint16_t)(sign | (a > 0x7F800000u ? 0x7E00 : h));
}

#endif
