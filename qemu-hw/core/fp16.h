/* IEEE binary16 <-> binary32, exactly and with round-to-nearest-even, in plain C. */
#ifndef RKNPU_FP16_H
#define RKNPU_FP16_H

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

static inline float rn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) {
        return rn_f32_from_bits(sign | 0x7F800000u | man << 13);
    }
    if (exp == 0) {   /* zero or subnormal: man · 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    return rn_f32_from_bits(sign | (exp + 112) << 23 | man << 13);
}

static inline uint16_t rn_float_to_half(float f)
{
    uint32_t u = rn_f32_bits(f), sign = (u >> 16) & 0x8000, man = u & 0x7FFFFF;
    int32_t exp = (int32_t)((u >> 23) & 0xFF) - 127 + 15;
    uint32_t shift, r, half;
    if (((u >> 23) & 0xFF) == 0xFF) {   /* inf, NaN (quiet) */
        return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));
    }
    if (exp >= 31) {
        return (uint16_t)(sign | 0x7C00);
    }
    if (exp <= 0) {   /* subnormal half (or zero): the implicit bit joins the mantissa */
        if (exp < -10) {
            return (uint16_t)sign;
        }
        man |= 0x800000;
        shift = (uint32_t)(14 - exp);
    } else {
        shift = 13;
    }
    r = man >> shift;
    half = 1u << (shift - 1);
    if ((man & ((half << 1) - 1)) > half || ((man & ((half << 1) - 1)) == half && (r & 1))) {
        r++;
    }
    /* a carry out of the mantissa moves the exponent on, which the addition does by itself */
    return (uint16_t)(sign | (exp > 0 ? ((uint32_t)exp << 10) + r : r));
}

#endif
