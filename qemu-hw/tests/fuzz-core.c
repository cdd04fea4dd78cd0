/*
 * libFuzzer target: random MMIO writes, regcmd buffers and memory fed to the core.
 *
 * Input: byte 0 = number of MMIO writes N; then N records of 6 bytes (offset le16, value le32;
 * a write that requests a kick runs it); the rest is NPU memory mapped at IOVA 0 (at least one
 * page, any access past it faults). A final kick as mainline rocket issues it executes the
 * regcmd at IOVA 0. Built without libFuzzer, main() replays the files named on the command line
 * (the sanitizer test run uses that on the seed corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rknpu.h"

struct fz_mem {
    uint8_t *p;
    size_t len;
};

static int fz_read(void *o, uint32_t iova, void *buf, size_t len)
{
    struct fz_mem *m = o;
    if ((uint64_t)iova + len > m->len) {
        return -1;
    }
    memcpy(buf, m->p + iova, len);
    return 0;
}

static int fz_write(void *o, uint32_t iova, const void *buf, size_t len)
{
    struct fz_mem *m = o;
    if ((uint64_t)iova + len > m->len) {
        return -1;
    }
    memcpy(m->p + iova, buf, len);
    return 0;
}

static void fz_log(void *o, enum rn_log_kind k, const char *msg)
{
    (void)o;
    (void)k;
    (void)msg;
}

static void write_reg(struct rn_core *c, const struct rn_mem *mem, uint32_t off, uint32_t v)
{
    struct rn_kick_result res;
    if (rn_core_write(c, off, v)) {
        rn_core_kick_sync(c, mem, &res);
        if (res.hang) {
            rn_core_reset(c);
        }
    }
    (void)rn_core_read(c, off);
    (void)rn_core_irq_level(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rn_core core;
    static int init;
    struct fz_mem m;
    struct rn_mem mem = { &m, fz_read, fz_write };
    size_t n = size ? data[0] : 0, pos = size ? 1 : 0;

    if (!init) {
        rn_core_init(&core);
        core.log = fz_log;
        init = 1;
    }
    rn_core_reset(&core);
    if (pos + 6 * n > size) {
        n = (size - pos) / 6;
    }
    m.len = size - pos - 6 * n;
    m.len = m.len < 4096 ? 4096 : m.len;
    m.p = calloc(1, m.len);
    memcpy(m.p, data + pos + 6 * n, size - pos - 6 * n);
    for (size_t i = 0; i < n; i++, pos += 6) {
        uint32_t off = (uint32_t)(data[pos] | data[pos + 1] << 8);
        uint32_t v = (uint32_t)data[pos + 2] | (uint32_t)data[pos + 3] << 8 |
                     (uint32_t)data[pos + 4] << 16 | (uint32_t)data[pos + 5] << 24;
        write_reg(&core, &mem, off, v);
    }
    /* the kick rocket_job_hw_submit() issues, on whatever the writes above left behind */
    rn_core_write(&core, RN_PC_BASE_ADDRESS, 1);
    rn_core_write(&core, RN_CNA_S_POINTER, 0xE);
    rn_core_write(&core, RN_CORE_S_POINTER, 0xE);
    rn_core_write(&core, RN_PC_BASE_ADDRESS, 0);
    rn_core_write(&core, RN_PC_REGISTER_AMOUNTS, 64);
    rn_core_write(&core, RN_PC_INTERRUPT_MASK, 0x300);
    rn_core_write(&core, RN_PC_TASK_CON, 0x7001 | (n & 3));
    write_reg(&core, &mem, RN_PC_OPERATION_ENABLE, 1);
    free(m.p);
    return 0;
}

#ifndef RN_LIBFUZZER
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf;
        long len;
        if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
            fprintf(stderr, "fuzz-core: cannot read %s\n", argv[i]);
            return 2;
        }
        buf = malloc((size_t)len + 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "fuzz-core: cannot read %s\n", argv[i]);
            return 2;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
    }
    printf("fuzz-core: replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
