/* rknpu-run: execute a job folder (JOB-FORMAT.md) on the NPU core model. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "quirks.h"

struct run_ctx {
    FILE *stats;
    size_t kick;
    int first;
    int open;                        /* the last task's stats object awaits its kick's status */
    int quiet;
    unsigned long long log_limit;    /* messages printed per kick; 0: all */
    unsigned long long logged, suppressed;
};

/* A regcmd stream can raise a message per entry (millions per kick): print a bounded number. */
static void log_cb(void *opaque, enum rn_log_kind kind, const char *msg)
{
    struct run_ctx *r = opaque;
    if (r->log_limit && r->logged >= r->log_limit) {
        r->suppressed++;
        return;
    }
    r->logged++;
    fprintf(stderr, "%s: %s\n", kind == RN_LOG_UNIMP ? "unimplemented" : "guest-error", msg);
}

static void log_end_kick(struct run_ctx *r)
{
    if (r->suppressed) {
        fprintf(stderr, "rknpu-run: kick %zu: %llu more messages suppressed (--log-limit)\n",
                r->kick, r->suppressed);
    }
    r->logged = r->suppressed = 0;
}

/* Strict option numbers: a whole C literal in [min, max], no sign, no trailing text. */
static int parse_num(const char *opt, const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *v)
{
    char *end;
    errno = 0;
    if (*s >= '0' && *s <= '9') {
        *v = strtoull(s, &end, 0);
        if (!errno && !*end && *v >= min && *v <= max) {
            return 0;
        }
    }
    fprintf(stderr, "rknpu-run: --%s: '%s' is not a number in %llu..%llu\n", opt, s, min, max);
    return -1;
}

/* The names of the quirks in mask as a JSON array: ["a","b"]. */
static void json_quirks(char *buf, size_t len, uint32_t mask)
{
    char names[512], *p = names, *comma;
    size_t at = 0;
    rn_quirks_format(mask, names, sizeof(names));
    at += (size_t)snprintf(buf, len, "[");
    while (*p && at < len) {
        comma = strchr(p, ',');
        if (comma) {
            *comma = 0;
        }
        at += (size_t)snprintf(buf + at, len - at, "%s\"%s\"", p == names ? "" : ",", p);
        p = comma ? comma + 1 : p + strlen(p);
    }
    if (at < len) {
        snprintf(buf + at, len - at, "]");
    }
}

/* CNA/CORE precision names (HARDWARE-UNKNOWNS Q19). */
static const char *prec_name(uint32_t p)
{
    static const char *const names[8] = { "int8", "int16", "fp16", "bf16", "?4", "?5", "int4",
                                          "tf32" };
    return names[p & 7];
}

static void task_cb(void *opaque, const struct rn_task_stats *st)
{
    struct run_ctx *r = opaque;
    char on[600], off[600];
    if (!r->quiet) {
        rn_quirks_format(st->quirks, on, sizeof(on));
        printf("kick %zu task %u: regcmd 0x%08x op_en 0x%02x %s%s%s %ux%ux%u -> %ux%ux%u k%ux%u "
               "s%u macs %llu rd %llu wr %llu cycles %llu%s%s%s\n",
               r->kick, st->kick_task, st->regcmd_iova, st->op_en,
               st->pool ? "pool" : st->depthwise ? "dw" : "conv", st->precision ? " " : "",
               st->precision ? prec_name(st->precision) : "", st->in_w, st->in_h, st->in_c,
               st->out_w, st->out_h, st->out_c, st->kw, st->kh, st->stride,
               (unsigned long long)st->macs,
               (unsigned long long)st->bytes_read, (unsigned long long)st->bytes_written,
               (unsigned long long)st->cycles, st->quirks ? " quirks " : "", on,
               st->error ? " ERROR" : "");
    }
    if (r->stats) {
        json_quirks(on, sizeof(on), st->quirks);
        json_quirks(off, sizeof(off), st->quirks_off);
        if (r->open) {
            fputs("}", r->stats);   /* not the last task of its kick */
        }
        fprintf(r->stats,
                "%s\n  {\"kick\":%zu,\"task\":%u,\"regcmd\":%u,\"op_en\":%u,\"pool\":%d,"
                "\"depthwise\":%d,\"precision\":\"%s\",\"ew\":%d,\"in\":[%u,%u,%u],"
                "\"out\":[%u,%u,%u],"
                "\"kernel\":[%u,%u],\"stride\":%u,"
                "\"macs\":%llu,\"bytes_read\":%llu,\"bytes_written\":%llu,\"cycles\":%llu,"
                "\"error\":%u,\"quirks\":%s,\"quirks_off\":%s",
                r->first ? "" : ",", r->kick, st->kick_task, st->regcmd_iova, st->op_en,
                st->pool, st->depthwise, prec_name(st->precision), st->ew, st->in_w, st->in_h,
                st->in_c, st->out_w, st->out_h, st->out_c, st->kw, st->kh, st->stride,
                (unsigned long long)st->macs,
                (unsigned long long)st->bytes_read, (unsigned long long)st->bytes_written,
                (unsigned long long)st->cycles, st->error, on, off);
        r->first = 0;
        r->open = 1;
    }
}

/* The last task's object carries INTERRUPT_RAW_STATUS as the kick left it. */
static void end_kick_stats(struct run_ctx *r, uint32_t raw_bits)
{
    if (r->stats && r->open) {
        fprintf(r->stats, ",\"status\":%u}", raw_bits);
    }
    r->open = 0;
}

static int close_stats(struct run_ctx *r, const char *path)
{
    int bad;
    fputs(r->first ? "]\n" : "\n]\n", r->stats);
    bad = ferror(r->stats) | fclose(r->stats);
    r->stats = NULL;
    if (bad) {
        fprintf(stderr, "rknpu-run: writing %s failed\n", path);
    }
    return bad ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rknpu-run [-o OUTDIR] [--stats FILE.json] [--clock HZ] [--repeat N] [-q]\n"
               "                 [--dma-bandwidth BYTES_PER_S] [--dma-bytes-per-cycle N]\n"
               "                 [--task-overhead CYCLES] [--log-limit N] [--quirks SPEC]\n"
               "                 [--threads N] JOBDIR\n"
               "Runs a rocketsim job folder (qemu-hw/tools/JOB-FORMAT.md) on the NPU core model.\n"
               "Exit status: 0 all kicks completed cleanly, 1 a kick raised an error bit or hung,\n"
               "2 the job could not be read. --log-limit: model messages printed per kick\n"
               "(default 100, 0: all). --quirks: the hardware failure modes modelled\n"
               "(HARDWARE-UNKNOWNS.md Q15): on (default), off (ideal hardware), all, or a list\n"
               "such as -size-e,+s-pointer-core-bits. --threads: host threads per task\n"
               "(1 to %d; default: 1 on a host with 2 CPUs or fewer, else up to 4); the\n"
               "bytes are the same for any number.\n", RN_MAX_THREADS);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "stats", required_argument, 0, 's' }, { "clock", required_argument, 0, 'c' },
        { "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
        { "repeat", required_argument, 0, 'r' },
        { "dma-bandwidth", required_argument, 0, 'b' },
        { "dma-bytes-per-cycle", required_argument, 0, 'y' },
        { "task-overhead", required_argument, 0, 't' },
        { "log-limit", required_argument, 0, 'l' },
        { "quirks", required_argument, 0, 'Q' }, { "threads", required_argument, 0, 'T' },
        { 0, 0, 0, 0 },
    };
    const char *outdir = NULL, *stats = NULL;
    unsigned long long clock = 0, macs = 0, bw = 0, per_cycle = 0, overhead = ~0ull, repeat = 1;
    unsigned long long threads = rn_threads_auto();
    struct timespec t0, t1;
    struct run_ctx r = { .first = 1, .log_limit = 100 };
    struct rn_core core;
    struct job job;
    int opt, status = 0, bad = 0;
    uint32_t quirks = rn_quirks_default();
    char err[200];

    while ((opt = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': outdir = optarg; break;
        case 's': stats = optarg; break;
        case 'q': r.quiet = 1; break;
        case 'c': bad |= parse_num("clock", optarg, 1, UINT64_MAX, &clock); break;
        case 'r': bad |= parse_num("repeat", optarg, 0, 1000000000, &repeat); break;
        case 'b': bad |= parse_num("dma-bandwidth", optarg, 1, UINT64_MAX, &bw); break;
        case 'y': bad |= parse_num("dma-bytes-per-cycle", optarg, 1, UINT32_MAX, &per_cycle); break;
        case 't': bad |= parse_num("task-overhead", optarg, 0, UINT32_MAX, &overhead); break;
        case 'l': bad |= parse_num("log-limit", optarg, 0, UINT64_MAX, &r.log_limit); break;
        case 'T': bad |= parse_num("threads", optarg, 1, RN_MAX_THREADS, &threads); break;
        case 'Q':
            if (rn_quirks_parse(optarg, &quirks, err, sizeof(err))) {
                fprintf(stderr, "rknpu-run: --quirks: %s\n", err);
                bad = 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (bad) {
        return 2;
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
        job_free(&job);
        return 2;
    }
    rn_core_init(&core);
    core.log = log_cb;
    core.log_opaque = &r;
    core.quirks = quirks;
    core.threads = (uint32_t)threads;
    core.on_task = task_cb;
    core.task_opaque = &r;
    if (clock || job.clock_hz) {
        core.timing.clock_hz = clock ? clock : job.clock_hz;
    }
    if (bw) {
        core.timing.dma_bytes_per_sec = bw;
    }
    if (per_cycle) {
        core.timing.dma_bytes_per_cycle = (uint32_t)per_cycle;
    }
    if (overhead <= UINT32_MAX) {
        core.timing.task_overhead_cycles = (uint32_t)overhead;
    }
    if (r.stats) {
        fputs("[", r.stats);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long long rep = 0; rep < repeat; rep++) {
        for (r.kick = 0; r.kick < job.nkick; r.kick++) {
            struct rn_kick_result res;
            job_run_kick(&job, &core, r.kick, &res);
            log_end_kick(&r);
            end_kick_stats(&r, res.raw_bits);
            macs += res.macs;
            if (res.hang || (res.raw_bits & (RN_ERR_DMA_READ | RN_ERR_DMA_WRITE))) {
                fprintf(stderr, "rknpu-run: kick %zu: %s (raw status 0x%05x)\n", r.kick,
                        res.hang ? "hang, core reset" : "error", res.raw_bits);
                status = 1;
            }
        }
        if (r.stats && close_stats(&r, stats)) {   /* statistics of the first repetition only */
            status = 2;
        }
        r.quiet = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r.stats && close_stats(&r, stats)) {   /* --repeat 0: an empty array */
        status = 2;
    }
    if (repeat > 1) {
        double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        printf("rknpu-run: %llu runs, %llu MACs in %.3f s: %.2f GMAC/s\n", repeat, macs, dt,
               (double)macs / dt * 1e-9);
    }
    if (job_write_dumps(&job, outdir ? outdir : job.dir)) {
        status = 2;
    }
    rn_core_destroy(&core);
    job_free(&job);
    return status;
}
