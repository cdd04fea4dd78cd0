/* rknpu-dis: decode a regcmd buffer into one named register write per line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dis.h"

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
    struct dis_counts counts = { { 0 } };
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
        dis_entry(stdout, "", i, e, fields, &counts);
    }
    if (ferror(f)) {
        fprintf(stderr, "rknpu-dis: %s: read error: %s\n", argv[optind], strerror(errno));
        rc = 2;
    }
    fclose(f);
    dis_summary(stdout, i, &counts);
    printf("\n");
    return rc;
}
