/*
 * Linked into the sanitizer build of qemu-system-aarch64 (scripts/build-qemu asan), never into
 * the plain one. clang's -fsanitize-coverage=inline-8bit-counters gives every edge of the
 * rk3588-npu files (hw/rocketsim: the QEMU devices and the core) a counter byte, and each
 * instrumented file's constructor calls this hook with the bounds of the one counter section.
 * With ROCKETSIM_COV_INFO set, the bounds go to that file: the device fuzzer
 * (qemu-hw/tests/fuzz-qemu.c) reads and clears the counters of the running QEMU through
 * process_vm_readv/writev, and feeds them to libFuzzer as extra counters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop);

void __sanitizer_cov_8bit_counters_init(uint8_t *start, uint8_t *stop)
{
    static int done;
    const char *path = getenv("ROCKETSIM_COV_INFO");
    FILE *f;
    if (done || !path || start >= stop) {
        return;
    }
    done = 1;
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%llx %llx\n", (unsigned long long)(uintptr_t)start,
                (unsigned long long)(uintptr_t)stop);
        fclose(f);
    }
}
