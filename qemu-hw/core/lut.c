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

void rn_lut_prepare(struct rn_lut *l)
{
    for (int t = 0; t < 2; t++) {
        l->step[t] = ldexp(1.0, -(int)l->index_select[t]);
        l->uflow_unit[t] = ldexp(1.0, -(int)l->uflow_shift[t]);
        l->oflow_unit[t] = ldexp(1.0, -(int)l->oflow_shift[t]);
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
    rn_lut_prepare(l);
    return RN_FX(cfg, DPU, LUT_CFG, LUT_LO_LE_MUX) == 2 && !RN_FX(cfg, DPU, LUT_CFG, LUT_EXPAND_EN) &&
           !RN_FX(cfg, DPU, LUT_CFG, LUT_ROAD_SEL) && !RN_FX(cfg, DPU, LUT_CFG, LUT_CAL_SEL) &&
           l->index_select[0] < 32 && l->index_select[1] < 32;
}
