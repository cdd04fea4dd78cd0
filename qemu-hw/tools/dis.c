/* Regcmd decoding shared by rknpu-dis and rknpu-diff. */
#include "dis.h"

#include "hwchoices.h"
#include "rknpu.h"

static void print_open(FILE *f, uint32_t v)
{
    static const char *const names[7] = { "CNA", "?", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA" };
    fprintf(f, "OP_EN      blocks=0x%02x", v);
    for (int b = 0; b < 7; b++) {
        if ((v >> b) & 1) {
            fprintf(f, " %s", names[b]);
        }
    }
    fprintf(f, "   (start the task)\n");
}

static void print_write(FILE *f, const char *prefix, uint64_t e, int fields)
{
    uint32_t blocks = rn_entry_blocks(e), value = rn_entry_value(e), low = rn_entry_offset(e) & 0xFFF;
    int first = 1;
    for (int b = 0; b < RN_BLK_DDMA; b++) {
        uint32_t off;
        const struct rn_reg_info *r;
        char buf[512];
        if (!((blocks >> b) & 1)) {
            continue;
        }
        off = rn_block_base((enum rn_block)b) | low;
        r = rn_reg_lookup(off);
        if (!first) {
            fprintf(f, "\n%s                             ", prefix);
        }
        fprintf(f, "%-8s %-22s = 0x%08x", rn_block_name((enum rn_block)b), r ? r->name : "?UNKNOWN",
                value);
        if (!r) {
            fprintf(f, "  (no register at 0x%04x)", off);
        } else if (fields && r->nfields > 1) {
            rn_reg_format_fields(r, value, buf, sizeof(buf));
            fprintf(f, "  %s", buf);
        }
        if ((rn_entry_offset(e) & 0xF000) != rn_block_base((enum rn_block)b)) {
            fprintf(f, "  [offset 0x%04x names another block]", rn_entry_offset(e));
        }
        first = 0;
    }
    fprintf(f, "\n");
}

void dis_entry(FILE *f, const char *prefix, long i, uint64_t e, int fields, struct dis_counts *k)
{
    fprintf(f, "%s%4ld  %016llx  ", prefix, i, (unsigned long long)e);
    switch (rn_entry_kind(e)) {
    case RN_ENTRY_NOP: fprintf(f, "NOP\n"); break;
    case RN_ENTRY_MARKER: fprintf(f, "MARKER     (0x0041: required before op_en)\n"); break;
    case RN_ENTRY_OP_EN: print_open(f, rn_entry_value(e)); break;
    case RN_ENTRY_WRITE: print_write(f, prefix, e, fields); break;
    default: fprintf(f, "INVALID    (bit 48 clear or no target)\n"); break;
    }
    if (k) {
        k->n[rn_entry_kind(e)]++;
    }
}

void dis_summary(FILE *f, long n, const struct dis_counts *k)
{
    fprintf(f, "%ld entries: %u writes, %u op_en, %u markers, %u no-ops, %u invalid", n,
            k->n[RN_ENTRY_WRITE], k->n[RN_ENTRY_OP_EN], k->n[RN_ENTRY_MARKER], k->n[RN_ENTRY_NOP],
            k->n[RN_ENTRY_INVALID]);
}
