/* rknpu-run: execute a job folder (JOB-FORMAT.md) on the NPU core model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"

struct run_ctx {
    FILE *stats;
    size_t kick;
    int first;
    int quiet;
};

static void log_cb(void *opaque, enum rn_log_kind kind, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "%s: %s\n", kind == RN_LOG_UNIMP ? "unimplemented" : "guest-error", msg);
}

static void task_cb(void *opaque, const struct rn_task_stats *st)
{
    struct run_ctx *r = opaque;
    if (!r->quiet) {
        printf("kick %zu task %u: regcmd 0x%08x op_en 0x%02x %s %ux%ux%u -> %ux%ux%u k%ux%u s%u "
               "macs %llu rd %llu wr %llu cycles %llu%s\n",
               r->kick, st->kick_task, st->regcmd_iova, st->op_en,
               st->depthwise ? "dw" : "conv", st->in_w, st->in_h, st->in_c, st->out_w,
               st->out_h, st->out_c, st->kw, st->kh, st->stride, (unsigned long long)st->macs,
               (unsigned long long)st->bytes_read, (unsigned long long)st->bytes_written,
               (unsigned long long)st->cycles, st->error ? " ERROR" : "");
    }
    if (r->stats) {
        fprintf(r->stats,
                "%s\n  {\"kick\":%zu,\"task\":%u,\"regcmd\":%u,\"op_en\":%u,\"depthwise\":%d,"
                "\"ew\":%d,\"in\":[%u,%u,%u],\"out\":[%u,%u,%u],\"kernel\":[%u,%u],\"stride\":%u,"
                "\"macs\":%llu,\"bytes_read\":%llu,\"bytes_written\":%llu,\"cycles\":%llu,"
                "\"error\":%u}",
                r->first ? "" : ",", r->kick, st->kick_task, st->regcmd_iova, st->op_en,
                st->depthwise, st->ew, st->in_w, st->in_h, st->in_c, st->out_w, st->out_h,
                st->out_c, st->kw, st->kh, st->stride, (unsigned long long)st->macs,
                (unsigned long long)st->bytes_read, (unsigned long long)st->bytes_written,
                (unsigned long long)st->cycles, st->error);
        r->first = 0;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rknpu-run [-o OUTDIR] [--stats FILE.json] [--clock HZ] [--repeat N] [-q]\n"
               "                 [--dma-bandwidth BYTES_PER_S] [--dma-bytes-per-cycle N]\n"
               "                 [--task-overhead CYCLES] JOBDIR\n"
               "Runs a rocketsim job folder (qemu-hw/tools/JOB-FORMAT.md) on the NPU core model.\n"
               "Exit status: 0 all kicks completed cleanly, 1 a kick raised an error bit or hung,\n"
               "2 the job could not be read.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "stats", required_argument, 0, 's' }, { "clock", required_argument, 0, 'c' },
        { "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
        { "repeat", required_argument, 0, 'r' },
        { "dma-bandwidth", required_argument, 0, 'b' },
        { "dma-bytes-per-cycle", required_argument, 0, 'y' },
        { "task-overhead", required_argument, 0, 't' }, { 0, 0, 0, 0 },
    };
    const char *outdir = NULL, *stats = NULL;
    unsigned long long clock = 0, macs = 0, bw = 0, per_cycle = 0, overhead = ~0ull;
    long repeat = 1;
    struct timespec t0, t1;
    struct run_ctx r = { .first = 1 };
    struct rn_core core;
    struct job job;
    int opt, status = 0;

    while ((opt = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': outdir = optarg; break;
        case 's': stats = optarg; break;
        case 'c': clock = strtoull(optarg, NULL, 0); break;
        case 'q': r.quiet = 1; break;
        case 'r': repeat = strtol(optarg, NULL, 0); break;
        case 'b': bw = strtoull(optarg, NULL, 0); break;
        case 'y': per_cycle = strtoull(optarg, NULL, 0); break;
        case 't': overhead = strtoull(optarg, NULL, 0); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (job_load(&job, argv[optind])) {
        return 2;
    }
    if (stats && !(r.stats = fopen(stats, "w"))) {
        perror(stats);
        return 2;
    }
    rn_core_init(&core);
    core.log = log_cb;
    core.on_task = task_cb;
    core.task_opaque = &r;
    if (clock || job.clock_hz) {
        core.timing.clock_hz = clock ? clock : job.clock_hz;
    }
    if (bw) {
        core.timing.dma_bytes_per_sec = bw;
    }
    if (per_cycle && per_cycle <= UINT32_MAX) {
        core.timing.dma_bytes_per_cycle = (uint32_t)per_cycle;
    }
    if (overhead <= UINT32_MAX) {
        core.timing.task_overhead_cycles = (uint32_t)overhead;
    }
    if (r.stats) {
        fputs("[", r.stats);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long rep = 0; rep < repeat; rep++) {
        for (r.kick = 0; r.kick < job.nkick; r.kick++) {
            struct rn_kick_result res;
            job_run_kick(&job, &core, r.kick, &res);
            macs += res.macs;
            if (res.hang || (res.raw_bits & (RN_ERR_DMA_READ | RN_ERR_DMA_WRITE))) {
                fprintf(stderr, "rknpu-run: kick %zu: %s (raw status 0x%05x)\n", r.kick,
                        res.hang ? "hang, core reset" : "error", res.raw_bits);
                status = 1;
            }
        }
        if (r.stats) {   /* statistics of the first repetition only */
            fputs("\n]\n", r.stats);
            fclose(r.stats);
            r.stats = NULL;
        }
        r.quiet = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (repeat > 1) {
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        printf("rknpu-run: %ld runs, %llu MACs in %.3f s: %.2f GMAC/s\n", repeat, macs, dt,
               (double)macs / dt * 1e-9);
    }
    if (job_write_dumps(&job, outdir ? outdir : job.dir)) {
        status = 2;
    }
    rn_core_destroy(&core);
    job_free(&job);
    return status;
}
