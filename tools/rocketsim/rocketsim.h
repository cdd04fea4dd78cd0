/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rocketsim: the project's host command (run, shell, timing, bench, replay, dis).
 * Shared declarations of its parts: util.c (paths, messages, child processes and Ctrl-C),
 * board.c (QEMU's command line, booting the board), npulog.c (QEMU's NPU trace events),
 * draw.c (pictures, cairo), trace.c (Perfetto / Chrome JSON trace), json.c (JSON out/in).
 */
#ifndef ROCKETSIM_H
#define ROCKETSIM_H

#include <stdint.h>

#include <gio/gio.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/* ---- util.c ---- */

extern const char *rs_prog;     /* "rocketsim run": the prefix of error messages */
extern const char *rs_tag;      /* "[rocketsim run]": the prefix of progress lines */
extern gboolean rs_quiet;       /* progress lines off (timing runs `run` quietly) */

const char *rs_root(void);      /* the source tree (ROCKETSIM_ROOT overrides) */
const char *rs_builddir(void);  /* this program's meson build folder */
char *rs_path(const char *rel); /* ROOT/rel, newly allocated */
char *rs_display_path(const char *path);   /* relative to ROOT when inside it */
void rs_step(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
G_NORETURN void rs_fail(int status, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
G_NORETURN void rs_usage_error(GOptionContext *ctx, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gboolean rs_file_exists(const char *path);
void rs_need_file(const char *path, const char *hint);
char *rs_read_text(const char *path, gsize *len);   /* NULL when unreadable */
gboolean rs_copy_file(const char *from, const char *to, GError **err);
char *rs_last_lines(const char *text, int n, const char *indent);
char *rs_py_float(double v);            /* as Python's repr(float) */
double rs_round(double x, int digits);  /* as Python's round(x, digits) */

/* Child processes: every one is registered, so that Ctrl-C (SIGINT), SIGTERM and SIGHUP stop
 * them all (SIGTERM, SIGKILL 5 s later) before this program exits with 130. */
void rs_signals_init(void);
gboolean rs_interrupted(void);
void rs_exit_if_interrupted(void);
GSubprocess *rs_spawn_launcher(GSubprocessLauncher *l, const char *const *argv, GError **err);
int rs_wait(GSubprocess *p);          /* exit status; 128+N for a signal N */
void rs_forget(GSubprocess *p);       /* unregister (after it exited) */
/* Run argv to completion; stdout (trailing newline removed) and stderr into *out / *err when
 * not NULL. Returns the exit status, -1 when it could not start (*err holds why). */
int rs_run_capture(const char *const *argv, char **out, char **err);
/* Spin the main loop until *flag is set (child watches, reads, signals). */
void rs_loop_until(volatile gboolean *flag);

/* ---- benchops.c: the bench's job folders and timing, and its figures past int8 ---- */

struct rs_seg {
    int64_t iova;
    GByteArray *data;     /* rs_job_write() takes it */
};

struct rs_kick {
    int64_t regcmd;
    uint32_t amount;      /* PC_REGISTER_AMOUNTS */
};

uint64_t rs_splitmix(uint64_t *s);
void rs_rm_tree(const char *path);
/* A job folder (JOB-FORMAT.md): the segments (sorted, each padded to the next, the last to a
 * page), the kicks, one dump. */
gboolean rs_job_write(const char *dir, struct rs_seg *segs, int nseg, const struct rs_kick *kicks,
                      int nkick, int64_t dump_iova, int64_t dump_size, GError **err);
/* rknpu-run --repeat on a job folder for about `seconds`: per run, its MACs and seconds. */
gboolean rs_bench_time(const char *run, const char *dir, double seconds, double *macs,
                       double *secs);
/* The matmuls of the other precisions, the LUT, EW and PPU jobs, below top: timed with run and
 * printed (info: test-kernels --info, for the CPU and path), or with run NULL only written. */
void rs_bench_ops(const char *run, const char *top, double seconds, const char *info);
extern int rs_bench_threads;   /* rknpu-run --threads for every timing (default 1) */

/* ---- json.c: JSON written by hand (exact number formats), read with json-glib ---- */

void rs_json_str(GString *s, const char *v);   /* a quoted, escaped JSON string */
JsonNode *rs_json_load(const char *path, GError **err);
const char *rs_jstr(JsonObject *o, const char *key, const char *dflt);
double rs_jnum(JsonObject *o, const char *key, double dflt);

/* ---- board.c ---- */

struct rs_board {
    int cores;                 /* NPU cores 1..3 */
    const char *mem;           /* guest RAM, "1G" */
    const char *share;         /* host folder mounted at /host, or NULL */
    int icount;                /* -icount shift, or -1 */
    int smp;                   /* guest CPUs, 0: rs_default_smp() */
    int threads;               /* the device's threads= (host threads per task), 0: its default */
    const char *quirks;        /* the device's quirks= property, or NULL */
    GPtrArray *extra;          /* further QEMU arguments (char *), or NULL */
};

struct rs_boot {
    GString *console;          /* QEMU's stdout and stderr: the guest's console */
    int status;                /* the guest script's exit status, -1 when it reported none */
    char *log;                 /* its stdout and stderr */
    char *dmesg;
    double wall;               /* seconds from QEMU's start to its exit */
    double ready;              /* seconds to the driver-ready line, -1: never */
    int qemu_rc;               /* QEMU's exit status */
    gboolean timed_out;
};

const char *rs_qemu_binary(void);           /* ROCKETSIM_QEMU, else ROOT/build/qemu-... */
void rs_board_check(void);                  /* the board's files exist, else a clear error */
int rs_default_smp(void);                   /* guest CPUs for this host (ROCKETSIM_SMP=N) */
GPtrArray *rs_qemu_cmd(const struct rs_board *b, const char *append, gboolean interactive);
/* Boot, run share/script in the guest, power off. */
void rs_boot(const struct rs_board *b, const char *script, int timeout_s, struct rs_boot *r);
void rs_boot_clear(struct rs_boot *r);

/* ---- npulog.c: QEMU's rk3588_npu_* trace events from a -D log ---- */

struct rs_npu_task {
    uint32_t kick_task, regcmd, op_en, error;
    uint64_t macs, bytes_read, bytes_written, cycles;
    GPtrArray *quirks;         /* names (char *) of the hardware quirks that fired */
};

struct rs_npu_kick {
    int core;
    uint32_t regcmd, task_con;
    int64_t kick_ns;           /* guest virtual time of the kick */
    int64_t irq_ns;            /* of the interrupt (rk3588_npu_done), -1 when none */
    int64_t npu_ns;            /* the cycle model's time for the kick */
    uint64_t cycles;
    uint32_t tasks_done, raw_status;
    GArray *tasks;             /* struct rs_npu_task */
};

struct rs_npu_log {
    GArray *kicks;             /* struct rs_npu_kick, completed ones, in log order */
    GArray *npu_ns;            /* int64_t per rk3588_npu_done, in log order */
};

gboolean rs_npu_log_read(const char *path, struct rs_npu_log *log, GError **err);
void rs_npu_log_clear(struct rs_npu_log *log);
const char *rs_op_en_blocks(uint32_t op_en, char *buf, size_t len);

/* ---- draw.c (cairo) ---- */

struct rs_box {
    double x0, y0, x1, y1;     /* pixels */
    char *text;                /* "cat 0.75" */
};

gboolean rs_png_size(const char *png, int *w, int *h, GError **err);
gboolean rs_draw_boxes(const char *in_png, const char *out_png, const struct rs_box *boxes,
                       int n, GError **err);
/* timing's picture of one inference: spans (start, end) of NPU work, in ns */
gboolean rs_draw_timeline(const char *out_png, const char *title, const int64_t *spans,
                          int nspans, GError **err);

/* ---- trace.c ---- */

struct rs_trace_info {
    const char *model, *image;
    int cores, invokes;
    int64_t clock_hz;
    const double *invoke_ms;   /* the guest's invoke times (rocket-infer's summary) */
};

/* One inference (the last invoke) as Chrome JSON trace events, for Perfetto's UI. */
gboolean rs_trace_write(const char *path, const struct rs_npu_log *log,
                        const struct rs_trace_info *info, GError **err);

/* ---- subcommands ---- */

struct rs_run_opts {
    const char *model, *image, *out, *trace;
    int cores, invokes, icount;          /* icount -1: none */
    int smp;                             /* guest CPUs, 0: rs_default_smp() */
    int threads;                         /* host threads per NPU task, 0: the device's default */
    int64_t clock, dma_bandwidth, task_overhead;   /* -1: the device's default */
    gboolean capture;
    double score;
};

struct rs_run_result {
    char *out;                 /* the run's folder */
    double *invoke_ms;
    int invokes;
    struct rs_npu_log npu;
};

void rs_run_defaults(struct rs_run_opts *o);
int rs_run(const struct rs_run_opts *o, struct rs_run_result *res);
void rs_run_result_clear(struct rs_run_result *res);

int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_timing(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
