/*
 * The elementwise fast paths against their step-by-step forms: fp16.h's branch-free conversions
 * and rn_lut_eval() against the versions they replaced (kept here as the reference), and the
 * DPU-only rows (dpu-row.c, memoised or not) against rn_dpu_float() element by element, on
 * random and edge inputs: NaNs, infinities, subnormals, ±0, the largest halves, saturation.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "conv.h"
#include "fp16.h"
#include "randvals.h"

/* ---- the reference: the conversions and the LUT as they were written step by step ---- */

static float ref_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) {
        return rn_f32_from_bits(sign | 0x7F800000u | man << 13);
    }
    if (exp == 0) {
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    return rn_f32_from_bits(sign | (exp + 112) << 23 | man << 13);
}

static uint16_t ref_float_to_half(float f)
{
    uint32_t u = rn_f32_bits(f), sign = (u >> 16) & 0x8000, man = u & 0x7FFFFF;
    int32_t exp = (int32_t)((u >> 23) & 0xFF) - 127 + 15;
    uint32_t shift, r, half;
    if (((u >> 23) & 0xFF) == 0xFF) {
        return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));
    }
    if (exp >= 31) {
        return (uint16_t)(sign | 0x7C00);
    }
    if (exp <= 0) {
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
    return (uint16_t)(sign | (exp > 0 ? ((uint32_t)exp << 10) + r : r));
}

static int ref_side(const struct rn_lut *l, int t, double x)
{
    return x < l->start[t] ? -1 : x > l->end[t] ? 1 : 0;
}

static double ref_lut_eval(const struct rn_lut *l, double x)
{
    int le = ref_side(l, 0, x), lo = ref_side(l, 1, x), t;
    double pos, q;
    if (isnan(x)) {
        return x;
    }
    if (!le && !lo) {
        t = l->hybrid_lo;
    } else if (!le || !lo) {
        t = !lo;
    } else if (le < 0 && lo < 0) {
        t = l->uflow_lo;
    } else if (le > 0 && lo > 0) {
        t = l->oflow_lo;
    } else {
        t = x < l->start[0] && x < l->start[1] ? l->uflow_lo : l->oflow_lo;
    }
    switch (ref_side(l, t, x)) {
    case -1:
        return l->table[t][0] +
               (x - l->start[t]) * l->uflow_scale[t] / ldexp(1.0, (int)l->uflow_shift[t]);
    case 1:
        return l->table[t][RN_LUT_ENTRIES - 1] +
               (x - l->end[t]) * l->oflow_scale[t] / ldexp(1.0, (int)l->oflow_shift[t]);
    default:
        pos = ldexp(x - l->start[t], -(int)l->index_select[t]);
        if (pos >= RN_LUT_ENTRIES - 1) {
            return l->table[t][RN_LUT_ENTRIES - 1];
        }
        q = floor(pos);
        return l->table[t][(int)q] + (l->table[t][(int)q + 1] - l->table[t][(int)q]) * (pos - q);
    }
}

/* ---- the conversions ---- */

static void test_half_to_float(void)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        g_assert_cmphex(rn_f32_bits(rn_half_to_float((uint16_t)h)), ==,
                        rn_f32_bits(ref_half_to_float((uint16_t)h)));
    }
}

static void check_to_half(uint32_t u)
{
    float f = rn_f32_from_bits(u);
    if (rn_float_to_half(f) != ref_float_to_half(f)) {
        g_error("float 0x%08x: 0x%04x, the reference 0x%04x", u, rn_float_to_half(f),
                ref_float_to_half(f));
    }
}

/* Every half's float and its neighbours, the floats at and around every rounding midpoint,
 * every exponent with random mantissas, NaN payloads, and random bits. */
static void test_float_to_half(void)
{
    GRand *r = g_rand_new_with_seed(16);
    for (uint32_t h = 0; h < 0x7C00; h++) {
        uint32_t a = rn_f32_bits(ref_half_to_float((uint16_t)h));
        uint32_t b = rn_f32_bits(ref_half_to_float((uint16_t)(h + 1)));
        uint32_t mid = rn_f32_bits((rn_f32_from_bits(a) + rn_f32_from_bits(b)) / 2);
        for (int d = -3; d <= 3; d++) {
            for (uint32_t sign = 0; sign < 2; sign++) {
                check_to_half((a + (uint32_t)d) ^ sign << 31);
                check_to_half((mid + (uint32_t)d) ^ sign << 31);
            }
        }
    }
    for (uint32_t e = 0; e < 256; e++) {
        for (int i = 0; i < 256; i++) {
            check_to_half(e << 23 | (g_rand_int(r) & 0x807FFFFFu));
        }
    }
    for (int i = 0; i < 1000000; i++) {
        check_to_half(g_rand_int(r));
    }
    g_rand_free(r);
}

/* ---- the LUT ---- */

static void random_lut(GRand *r, struct rn_lut *l)
{
    memset(l, 0, sizeof(*l));
    for (int t = 0; t < 2; t++) {
        int32_t a = g_rand_int_range(r, -70000, 70000), b = g_rand_int_range(r, -70000, 70000);
        for (int i = 0; i < RN_LUT_ENTRIES; i++) {
            l->table[t][i] = (int16_t)g_rand_int(r);
        }
        l->start[t] = g_rand_int_range(r, 0, 8) ? MIN(a, b) : MAX(a, b);   /* some inverted */
        l->end[t] = g_rand_int_range(r, 0, 8) ? MAX(a, b) : MIN(a, b);
        l->index_select[t] = (uint32_t)g_rand_int_range(r, 0, 32);
        l->uflow_scale[t] = (int16_t)g_rand_int(r);
        l->oflow_scale[t] = (int16_t)g_rand_int(r);
        l->uflow_shift[t] = (uint32_t)g_rand_int_range(r, 0, 32);
        l->oflow_shift[t] = (uint32_t)g_rand_int_range(r, 0, 32);
    }
    l->hybrid_lo = g_rand_boolean(r);
    l->oflow_lo = g_rand_boolean(r);
    l->uflow_lo = g_rand_boolean(r);
    rn_lut_prepare(l);
}

static void test_lut(void)
{
    GRand *r = g_rand_new_with_seed(18);
    for (int iter = 0; iter < 2000; iter++) {
        struct rn_lut l;
        random_lut(r, &l);
        for (int i = 0; i < 500; i++) {
            float x = i % 3 ? rn_f32_from_bits(random_f32(r))
                            : (float)g_rand_double_range(r, -80000, 80000);
            double got = rn_lut_eval(&l, x), want = ref_lut_eval(&l, x);
            if (memcmp(&got, &want, sizeof(got))) {
                g_error("LUT at %a: %a, the reference %a", (double)x, got, want);
            }
        }
    }
    g_rand_free(r);
}

/* ---- the DPU-only rows ---- */

static void random_stage(GRand *r, struct rn_alu_stage *s, bool bs)
{
    s->on = g_rand_boolean(r);
    s->alu = g_rand_boolean(r);
    s->alu_mem = bs && g_rand_boolean(r);
    s->sub = g_rand_boolean(r);
    s->operand = (int32_t)random_f32(r);
    s->mul = g_rand_boolean(r);
    s->mul_operand = (int16_t)random_half(r);
    s->relu = g_rand_boolean(r);
    s->relux = g_rand_boolean(r);
    s->relux_cmp = (int32_t)random_f32(r);
}

static void random_conv(GRand *r, struct rn_conv *d)
{
    static const uint32_t algos[] = { RN_EW_MAX, RN_EW_MIN, RN_EW_ADD, RN_EW_MINUS, RN_EW_ABS,
                                      RN_EW_NEG };
    static const uint32_t shifts[] = { 0, 1, 7, 24, 100, 126, 127, 140, 149, 150, 4095 };
    memset(d, 0, sizeof(*d));
    d->fp16 = true;
    random_stage(r, &d->bs, true);
    random_stage(r, &d->bn, false);
    d->ew_on = g_rand_boolean(r);
    d->ew_operand = g_rand_boolean(r);
    d->ew_algo = algos[g_rand_int_range(r, 0, G_N_ELEMENTS(algos))];
    d->ew_mul = g_rand_int_range(r, 0, 4) == 0;
    d->ew_from_regs = g_rand_boolean(r);
    d->ew_bytes = g_rand_boolean(r) ? 2 : 4;
    d->ew_relu = g_rand_boolean(r);
    d->ew_relux = g_rand_boolean(r);
    d->ew_relux_cmp = (int32_t)random_f32(r);
    d->out_scale = g_rand_boolean(r) ? 1 : g_rand_int(r) & 0xFFFF;
    d->out_shift = (g_rand_boolean(r) ? 0x80000000u : 0) |
                   (g_rand_boolean(r) ? shifts[g_rand_int_range(r, 0, G_N_ELEMENTS(shifts))]
                                      : g_rand_int(r) & 0xFFF);
    d->out_offset = g_rand_boolean(r) ? (uint32_t)g_rand_int_range(r, -300, 300) : g_rand_int(r);
    d->out_prec = g_rand_boolean(r) ? RN_PREC_FP16 : RN_PREC_FP32;
    d->out_bytes = d->out_prec == RN_PREC_FP16 ? 2 : 4;
}

#define ROW_MAX 1500

static void test_rows(void)
{
    GRand *r = g_rand_new_with_seed(17);
    static int32_t in[ROW_MAX], ew[ROW_MAX];
    static uint8_t got[ROW_MAX * 16], want[ROW_MAX * 16];
    static struct rn_fmemo memo;
    for (int iter = 0; iter < 3000; iter++) {
        struct rn_conv d;
        struct rn_lut lut;
        struct rn_fplan q;
        bool with_lut = g_rand_int_range(r, 0, 3) == 0, with_ew, use_memo;
        size_t n = (size_t)g_rand_int_range(r, 1, ROW_MAX), stride = g_rand_boolean(r) ? 16 : 4;
        uint32_t bias = random_f32(r);
        random_conv(r, &d);
        random_lut(r, &lut);
        rn_dpu_fplan(&d, with_lut ? &lut : NULL, &q);
        with_ew = g_rand_int_range(r, 0, 4) != 0;
        use_memo = !q.ew && g_rand_boolean(r);
        for (size_t i = 0; i < n; i++) {
            in[i] = (int32_t)(random_half(r) | (g_rand_boolean(r) ? 0xABCD0000u : 0));
            ew[i] = (int32_t)(d.ew_bytes == 2 && !d.ew_from_regs ? random_half(r) : random_f32(r));
        }
        memset(got, 0x5A, n * stride);
        memset(want, 0x5A, n * stride);
        for (size_t i = 0; i < n; i++) {
            float v = rn_dpu_float(&d, with_lut ? &lut : NULL, rn_half_to_float((uint16_t)in[i]),
                                   bias, with_ew ? &ew[i] : NULL);
            rn_float_store(want + i * stride, v, d.out_prec);
        }
        if (use_memo) {
            memset(memo.known, 0, sizeof(memo.known));
        }
        rn_dpu_float_row(&q, use_memo ? &memo : NULL, bias, in, with_ew ? ew : NULL, n, got,
                         stride);
        for (size_t i = 0; i < n * stride; i++) {
            if (got[i] != want[i]) {
                size_t e = i / stride;
                g_error("iteration %d algo %u mul %d on %d op %d (lut %d, memo %d, ew %d 0x%08x, bias 0x%08x): element %zu "
                        "(input 0x%04x) byte %zu: 0x%02x, rn_dpu_float() 0x%02x", iter, d.ew_algo, d.ew_mul, d.ew_on, d.ew_operand, with_lut,
                        use_memo, with_ew, (uint32_t)ew[e], bias, e, (uint16_t)in[e],
                        i % stride, got[i], want[i]);
            }
        }
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/elem/half-to-float", test_half_to_float);
    g_test_add_func("/elem/float-to-half", test_float_to_half);
    g_test_add_func("/elem/lut", test_lut);
    g_test_add_func("/elem/rows", test_rows);
    return g_test_run();
}
