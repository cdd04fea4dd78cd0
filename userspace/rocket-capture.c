// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocket-capture.so: LD_PRELOAD shim that records every rocket job as a rocketsim job folder
 * (qemu-hw/tools/JOB-FORMAT.md), so that a run on the emulator or on a real board replays on the
 * host with rknpu-run.
 *
 *   ROCKET_CAPTURE_DIR=/host/capture LD_PRELOAD=/usr/lib/rocket-capture.so rocket-infer ...
 *
 * For each SUBMIT it writes DIR/submit-NNNN/: the contents of its jobs' input BOs and of the BOs
 * holding their regcmds as they were before the submit, the kicks mainline rocket issues (one per
 * task, jobs in order), and after the jobs (it waits with PREP_BO) the output BOs as
 * expected-IOVA.bin, to compare with what rknpu-run dumps as out-IOVA.bin.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include <drm/drm.h>
#include <drm/rocket_accel.h>

#define MAX_BO 4096

struct bo {
    int fd;
    uint32_t handle, size;
    uint64_t iova, offset;
};

static struct bo bos[MAX_BO];
static int nbos, njobs;   /* njobs counts submits */
static int (*real_ioctl)(int, unsigned long, ...);

static struct bo *find_handle(int fd, uint32_t h)
{
    for (int i = 0; i < nbos; i++) {
        if (bos[i].fd == fd && bos[i].handle == h) {
            return &bos[i];
        }
    }
    return NULL;
}

static struct bo *find_iova(int fd, uint64_t iova)
{
    for (int i = 0; i < nbos; i++) {
        if (bos[i].fd == fd && iova >= bos[i].iova && iova < bos[i].iova + bos[i].size) {
            return &bos[i];
        }
    }
    return NULL;
}

static void save_bo(int fd, const struct bo *b, const char *path)
{
    void *m = mmap(NULL, b->size, PROT_READ, MAP_SHARED, fd, b->offset);
    void *copy = malloc(b->size);   /* 9p cannot write straight from a BO map */
    FILE *f = fopen(path, "wb");
    if (m != MAP_FAILED && f && copy) {
        memcpy(copy, m, b->size);
        fwrite(copy, 1, b->size, f);
    }
    free(copy);
    if (f) {
        fclose(f);
    }
    if (m != MAP_FAILED) {
        munmap(m, b->size);
    }
}

static void wait_bo(int fd, const struct bo *b)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct drm_rocket_prep_bo p = { .handle = b->handle,
                                    .timeout_ns = (now.tv_sec + 10) * 1000000000ll + now.tv_nsec };
    real_ioctl(fd, DRM_IOCTL_ROCKET_PREP_BO, &p);
}

/* Add the BOs of one job to a deduplicated list: inputs, regcmd holders, outputs (flagged). */
static int job_bos(int fd, const struct drm_rocket_job *j, struct bo **list, int *is_out, int n)
{
    const uint32_t *in = (const uint32_t *)(uintptr_t)j->in_bo_handles;
    const uint32_t *out = (const uint32_t *)(uintptr_t)j->out_bo_handles;
    const uint8_t *tasks = (const uint8_t *)(uintptr_t)j->tasks;
    for (uint32_t k = 0; k < j->in_bo_handle_count + j->out_bo_handle_count + j->task_count; k++) {
        struct bo *b;
        int o = 0;
        if (k < j->in_bo_handle_count) {
            b = find_handle(fd, in[k]);
        } else if (k < j->in_bo_handle_count + j->out_bo_handle_count) {
            b = find_handle(fd, out[k - j->in_bo_handle_count]);
            o = 1;
        } else {
            const struct drm_rocket_task *t = (const void *)(tasks + (k - j->in_bo_handle_count -
                                                                      j->out_bo_handle_count) *
                                                                         j->task_struct_size);
            b = find_iova(fd, t->regcmd);
        }
        int dup = 0;
        for (int i = 0; b && i < n; i++) {
            if (list[i] == b) {
                is_out[i] |= o;
                dup = 1;
            }
        }
        if (b && !dup && n < MAX_BO) {
            list[n] = b;
            is_out[n++] = o;
        }
    }
    return n;
}

#define JOB(s, k) ((const struct drm_rocket_job *)((const uint8_t *)(uintptr_t)(s)->jobs + \
                                                   (k) * (s)->job_struct_size))

/* One SUBMIT = one job folder: its jobs run in order, so their kicks replay in order. */
static int capture_before(int fd, const struct drm_rocket_submit *s, const char *dir,
                          struct bo **list, int *is_out, char *jd, size_t jdlen)
{
    char path[700];
    int n = 0;
    for (uint32_t k = 0; k < s->job_count; k++) {
        n = job_bos(fd, JOB(s, k), list, is_out, n);
    }
    /* Mesa does not list weight and bias BOs in the jobs: take every BO of this fd */
    for (int i = 0; i < nbos && n < MAX_BO; i++) {
        int seen = 0;
        for (int k = 0; k < n; k++) {
            seen |= list[k] == &bos[i];
        }
        if (bos[i].fd == fd && !seen) {
            list[n] = &bos[i];
            is_out[n++] = 0;
        }
    }
    snprintf(jd, jdlen, "%s/submit-%04d", dir, njobs++);
    mkdir(dir, 0755);
    mkdir(jd, 0755);
    snprintf(path, sizeof(path), "%s/job.txt", jd);
    FILE *f = fopen(path, "w");
    if (!f) {
        return 0;
    }
    fprintf(f, "rknpu-job 1\n# captured by rocket-capture: %u jobs\n", s->job_count);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/bo-%08llx.bin", jd, (unsigned long long)list[i]->iova);
        save_bo(fd, list[i], path);
        fprintf(f, "mem 0x%08llx 0x%x bo-%08llx.bin\n", (unsigned long long)list[i]->iova,
                list[i]->size, (unsigned long long)list[i]->iova);
    }
    for (uint32_t k = 0; k < s->job_count; k++) {
        const struct drm_rocket_job *j = JOB(s, k);
        for (uint32_t t = 0; t < j->task_count; t++) {
            const struct drm_rocket_task *tk =
                (const void *)((const uint8_t *)(uintptr_t)j->tasks + t * j->task_struct_size);
            fprintf(f, "kick 0x%08x %u 0x7001\n", tk->regcmd, (tk->regcmd_count + 1) / 2 - 1);
        }
    }
    for (int i = 0; i < n; i++) {
        if (is_out[i]) {
            fprintf(f, "dump 0x%08llx 0x%x out-%08llx.bin\n", (unsigned long long)list[i]->iova,
                    list[i]->size, (unsigned long long)list[i]->iova);
        }
    }
    fclose(f);
    return n;
}

static void capture_after(int fd, struct bo **list, int *is_out, int n, const char *jd)
{
    char path[700];
    for (int i = 0; i < n; i++) {
        if (is_out[i]) {
            wait_bo(fd, list[i]);
            snprintf(path, sizeof(path), "%s/expected-%08llx.bin", jd,
                     (unsigned long long)list[i]->iova);
            save_bo(fd, list[i], path);
        }
    }
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!real_ioctl) {
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    }
    const char *dir = getenv("ROCKET_CAPTURE_DIR");
    if (dir && req == DRM_IOCTL_ROCKET_SUBMIT) {
        static struct bo *list[MAX_BO];
        static int is_out[MAX_BO];
        char jd[600];
        int n = capture_before(fd, arg, dir, list, is_out, jd, sizeof(jd));
        int rc = real_ioctl(fd, req, arg);
        capture_after(fd, list, is_out, n, jd);
        return rc;
    }
    int rc = real_ioctl(fd, req, arg);
    if (rc == 0 && req == DRM_IOCTL_ROCKET_CREATE_BO && nbos < MAX_BO) {
        const struct drm_rocket_create_bo *c = arg;
        /* the IOMMU maps whole pages: that is what the NPU can reach */
        bos[nbos++] = (struct bo){ fd, c->handle, (c->size + 4095) & ~4095u, c->dma_address,
                                   c->offset };
    }
    return rc;
}
