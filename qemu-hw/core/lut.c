/*
 * The DPU's LUT (HARDWARE-UNKNOWNS Q18): two tables of 513 signed 16-bit entries, LE and LO,
 * filled through LUT_ACCESS_CFG / LUT_ACCESS_DATA, looked up with linear interpolation between
 * entries and linear extrapolation past either end.
 */
#include <math.h>

#include "conv.h"

void rn_lut_write(struct rn_core *c, uint32_t offset, uint32_t value)
{
    if (offset == RN_DPU_LUT_ACCESS_CFG) {
        c->lut_table = RN_FX(value, DPU, LUT_ACCESS_CFG, LUT_TABLE_ID);
        c->lut_addr = RN_FX(value, DPU, LUT_ACCESS_CFG, LUT_ADDR);
        return;
    }
    /* LUT_ACCESS_DATA: stores at the address, which then moves on (writes only) */
    if (RN_FX(REG(c, DPU_LUT_ACCESS_CFG), DPU, LUT_ACCESS_CFG, LUT_ACCESS_TYPE)) {
        if (c->lut_addr < RN_LUT_ENTRIES) {
            c->lut[c->lut_table & 1][c->lut_addr] = (int16_t)(value & 0xFFFF);
        }
        c->lut_addr = (c->lut_addr + 1) & 0x3FF;
    }
}

/* Decode the LUT registers of the task (Q18); false for the settings no program was seen with. */
bool rn_lut_decode(const struct rn_core *c, struct rn_lut *l)
{
    uint32_t cfg = REG(c, DPU_LUT_CFG), info = REG(c, DPU_LUT_INFO);
    uint32_t les = REG(c, DPU_LUT_LE_SLOPE_SCALE), lesh = REG(c, DPU_LUT_LE_SLOPE_SHIFT);
    uint32_t los = REG(c, DPU_LUT_LO_SLOPE_SCALE), losh = REG(c, DPU_LUT_LO_SLOPE_SHIFT);
    memcpy(l->table, c->lut, sizeof(l->table));
    l->hybrid_lo = RN_FX(cfg, DPU, LUT_CFG, LUT_HYBRID_PRIORITY);
    l->oflow_lo = RN_FX(cfg, DPU, LUT_CFG, LUT_OFLOW_PRIORITY);
    l->uflow_lo = RN_FX(cfg, DPU, LUT_CFG, LUT_UFLOW_PRIORITY);
    l->start[0] = (int32_t)REG(c, DPU_LUT_LE_START);
    l->end[0] = (int32_t)REG(c, DPU_LUT_LE_END);
    l->start[1] = (int32_t)REG(c, DPU_LUT_LO_START);
    l->end[1] = (int32_t)REG(c, DPU_LUT_LO_END);
    l->index_select[0] = RN_FX(info, DPU, LUT_INFO, LUT_LE_INDEX_SELECT);
    l->index_select[1] = RN_FX(info, DPU, LUT_INFO, LUT_LO_INDEX_SELECT);
    l->uflow_scale[0] = (int16_t)RN_FX(les, DPU, LUT_LE_SLOPE_SCALE, LUT_LE_SLOPE_UFLOW_SCALE);
    l->oflow_scale[0] = (int16_t)RN_FX(les, DPU, LUT_LE_SLOPE_SCALE, LUT_LE_SLOPE_OFLOW_SCALE);
    l->uflow_scale[1] = (int16_t)RN_FX(los, DPU, LUT_LO_SLOPE_SCALE, LUT_LO_SLOPE_UFLOW_SCALE);
    l->oflow_scale[1] = (int16_t)RN_FX(los, DPU, LUT_LO_SLOPE_SCALE, LUT_LO_SLOPE_OFLOW_SCALE);
    l->uflow_shift[0] = RN_FX(lesh, DPU, LUT_LE_SLOPE_SHIFT, LUT_LE_SLOPE_UFLOW_SHIFT);
    l->oflow_shift[0] = RN_FX(lesh, DPU, LUT_LE_SLOPE_SHIFT, LUT_LE_SLOPE_OFLOW_SHIFT);
    l->uflow_shift[1] = RN_FX(losh, DPU, LUT_LO_SLOPE_SHIFT, LUT_LO_SLOPE_UFLOW_SHIFT);
    l->oflow_shift[1] = RN_FX(losh, DPU, LUT_LO_SLOPE_SHIFT, LUT_LO_SLOPE_OFLOW_SHIFT);
    return RN_FX(cfg, DPU, LUT_CFG, LUT_LO_LE_MUX) == 2 && !RN_FX(cfg, DPU, LUT_CFG, LUT_EXPAND_EN) &&
           !RN_FX(cfg, DPU, LUT_CFG, LUT_ROAD_SEL) && !RN_FX(cfg, DPU, LUT_CFG, LUT_CAL_SEL) &&
           l->index_select[0] < 32 && l->index_select[1] < 32;
}

/* Where x falls for table t: -1 below START, 0 inside, 1 above END. */
static int side(const struct rn_lut *l, int t, double x)
{
    return x < l->start[t] ? -1 : x > l->end[t] ? 1 : 0;
}

double rn_lut_eval(const struct rn_lut *l, double x)
{
    int le = side(l, 0, x), lo = side(l, 1, x), t;
    double pos, q;
    if (isnan(x)) {
        return x;   /* no table and no entry for a NaN: it goes through (Q18, L) */
    }
    if (!le && !lo) {
        t = l->hybrid_lo;
    } else if (!le || !lo) {
        t = !lo;   /* the one that hits */
    } else if (le < 0 && lo < 0) {
        t = l->uflow_lo;
    } else if (le > 0 && lo > 0) {
        t = l->oflow_lo;
    } else {
        t = x < l->start[0] && x < l->start[1] ? l->uflow_lo : l->oflow_lo;
    }
    switch (side(l, t, x)) {
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
