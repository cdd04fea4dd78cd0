/* rknpu-dis: decode a regcmd buffer into one named register write per line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hwchoices.h"
#include "rknpu.h"

static void print_open(uint32_t v)
{
    static const char *const names[7] = { "CNA", "?", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA" };
    printf("OP_EN      blocks=0x%02x", v);
    for (int b = 0; b < 7; b++) {
        if ((v >> b) & 1) {
            printf(" %s", names[b]);
        }
    }
    printf("   (start the task)\n");
}

static void print_write(uint64_t e, int fields)
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
        printf("%s%-8s %-22s = 0x%08x", first ? "" : "\n                             ",
               rn_block_name((enum rn_block)b), r ? r->name : "?UNKNOWN", value);
        if (!r) {
            printf("  (no register at 0x%04x)", off);
        } else if (fields && r->nfields > 1) {
            rn_reg_format_fields(r, value, buf, sizeof(buf));
            printf("  %s", buf);
        }
        if ((rn_entry_offset(e) & 0xF000) != rn_block_base((enum rn_block)b)) {
            printf("  [offset 0x%04x names another block]", rn_entry_offset(e));
        }
        first = 0;
    }
    printf("\n");
}

/* Strict option numbers: a whole non-negative C literal, no sign, no trailing text. */
static int parse_count(const char *opt, const char *s, long *v)
{
    char *end;
    unsigned long long x;
    errno = 0;
    if (*s >= '0' && *s <= '9') {
        x = strtoull(s, &end, 0);
        if (!errno && !*end && x <= (unsigned long long)LONG_MAX) {
            *v = (long)x;
            return 0;
        }
    }
    fprintf(stderr, "rknpu-dis: %s: '%s' is not a non-negative number\n", opt, s);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rknpu-dis [--no-fields] [-s BYTE_OFFSET] [-n ENTRIES] REGCMD.bin\n"
               "Decodes 64-bit NPU regcmd entries (target[63:48] value[47:16] offset[15:0]).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "no-fields", no_argument, 0, 'F' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    long start = 0, count = -1, i;
    int fields = 1, opt, rc = 0;
    struct stat st;
    unsigned counts[5] = { 0 };
    FILE *f;
    uint8_t b[8];

    while ((opt = getopt_long(argc, argv, "s:n:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'F': fields = 0; break;
        case 's': if (parse_count("-s", optarg, &start)) { return 2; } break;
        case 'n': if (parse_count("-n", optarg, &count)) { return 2; } break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    f = fopen(argv[optind], "rb");
    if (f && !fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
        fclose(f);
        fprintf(stderr, "rknpu-dis: %s: %s\n", argv[optind], strerror(EISDIR));
        return 2;
    }
    if (!f || fseek(f, start, SEEK_SET)) {
        fprintf(stderr, "rknpu-dis: %s: %s\n", argv[optind], strerror(errno));
        if (f) {
            fclose(f);
        }
        return 2;
    }
    for (i = 0; (count < 0 || i < count) && fread(b, 1, 8, f) == 8; i++) {
        uint64_t e = 0;
        for (int k = 7; k >= 0; k--) {
            e = e << 8 | b[k];
        }
        printf("%4ld  %016llx  ", i, (unsigned long long)e);
        switch (rn_entry_kind(e)) {
        case RN_ENTRY_NOP: printf("NOP\n"); break;
        case RN_ENTRY_MARKER: printf("MARKER     (0x0041: required before op_en)\n"); break;
        case RN_ENTRY_OP_EN: print_open(rn_entry_value(e)); break;
        case RN_ENTRY_WRITE: print_write(e, fields); break;
        default: printf("INVALID    (bit 48 clear or no target)\n"); break;
        }
        counts[rn_entry_kind(e)]++;
    }
    if (ferror(f)) {
        fprintf(stderr, "rknpu-dis: %s: read error: %s\n", argv[optind], strerror(errno));
        rc = 2;
    }
    fclose(f);
    printf("%ld entries: %u writes, %u op_en, %u markers, %u no-ops, %u invalid\n", i,
           counts[RN_ENTRY_WRITE], counts[RN_ENTRY_OP_EN], counts[RN_ENTRY_MARKER],
           counts[RN_ENTRY_NOP], counts[RN_ENTRY_INVALID]);
    return rc;
}
