/* Regcmd decoding shared by rknpu-dis and rknpu-diff: one named register write per line. */
#ifndef RKNPU_DIS_H
#define RKNPU_DIS_H

#include <stdint.h>
#include <stdio.h>

/* Entry counts, indexed by enum rn_entry_kind (hwchoices.h). */
struct dis_counts {
    unsigned n[5];
};

/*
 * Print entry number i (64-bit value e) as rknpu-dis does: "%4ld  %016llx  " then the decoded
 * entry, fields of multi-field registers unless fields is 0. Lines after the first of an entry
 * that writes several blocks are indented to line up; every line starts with prefix.
 */
void dis_entry(FILE *f, const char *prefix, long i, uint64_t e, int fields, struct dis_counts *k);
/* "N entries: W writes, O op_en, M markers, Z no-ops, I invalid" (no newline). */
void dis_summary(FILE *f, long n, const struct dis_counts *k);

#endif
