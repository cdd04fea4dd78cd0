// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim run --trace FILE: one inference (the last invoke) as a Chrome JSON trace
 * (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU), which
 * Perfetto's UI (https://ui.perfetto.dev) and chrome://tracing open. Time is the guest's virtual
 * time (QEMU_CLOCK_VIRTUAL, the clock of the NPU trace events), 0 at the invoke's start.
 *
 *   process "NPU"   one thread per core: a slice per task ("task 37 (op 12)": the 38th task of
 *                   the invoke, of its 13th NPU operation), args MACs, bytes, cycles, blocks,
 *                   quirks that fired; and, where the interrupt came later than the modelled
 *                   time (without -icount the guest's time runs with the host's, which computes
 *                   the kick meanwhile), a slice "waiting for the host's compute"
 *   process "guest" "rocket-infer": the invoke; "rocket driver, core N": the gaps from an
 *                   interrupt to the next kick on that core (IRQ handler, job done, next job)
 *
 * A task's slice is its share of the kick's modelled time by cycles (mainline rocket kicks one
 * task at a time, so the kick's). An operation is a run of tasks whose regcmd buffers follow each
 * other (Mesa writes an operation's tasks into one buffer, a fixed stride apart).
 *
 * rocket-infer reports how long each invoke took on the guest's clock, not when it began; the
 * invokes ran back to back, so their starts are the one offset that keeps every invoke's NPU
 * tasks inside it, taken at the middle of the range that does (args: placement_uncertainty_ms).
 *
 * Timestamps are microseconds with three decimals plus a trailing 1 (a tenth of a nanosecond):
 * Perfetto turns ts * 1000 into whole nanoseconds, truncating (older versions) or rounding
 * (newer), and either way the tenth keeps it exact, so that a task ends exactly where the next
 * begins instead of a nanosecond after (which Perfetto would take for a nested slice).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rocketsim.h"

#define PID_NPU 1
#define PID_GUEST 2
#define TID_INVOKE 100
#define TID_GAPS 200

struct ev {
    int64_t ts;
    int order;           /* ties: the order written */
    char *json;
};

struct writer {
    GArray *evs;         /* struct ev */
    GString *meta;
    int64_t t0;
};

static void us(GString *s, int64_t ns)
{
    g_string_append_printf(s, "%" PRId64 ".%03" PRId64 "1", ns / 1000, ns % 1000);
}

/* Begin a complete event ("ph": "X"); the caller adds args and closes it with end_event. */
static GString *slice(struct writer *w, const char *name, const char *cat, int pid, int tid,
                      int64_t start, int64_t dur)
{
    GString *s = g_string_new("{\"name\": ");
    rs_json_str(s, name);
    g_string_append(s, ", \"cat\": ");
    rs_json_str(s, cat);
    g_string_append_printf(s, ", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": ", pid, tid);
    us(s, start - w->t0);
    g_string_append(s, ", \"dur\": ");
    us(s, MAX(dur, 0));
    g_string_append(s, ", \"args\": {");
    return s;
}

static void end_event(struct writer *w, GString *s, int64_t start)
{
    if (g_str_has_suffix(s->str, ", ")) {
        g_string_truncate(s, s->len - 2);
    }
    g_string_append(s, "}}");
    struct ev e = { start, (int)w->evs->len, g_string_free(s, FALSE) };
    g_array_append_val(w->evs, e);
}

static void arg_int(GString *s, const char *key, int64_t v)
{
    rs_json_str(s, key);
    g_string_append_printf(s, ": %" PRId64 ", ", v);
}

static void arg_str(GString *s, const char *key, const char *v)
{
    rs_json_str(s, key);
    g_string_append(s, ": ");
    rs_json_str(s, v);
    g_string_append(s, ", ");
}

static void arg_ms(GString *s, const char *key, double ms)
{
    rs_json_str(s, key);
    g_string_append_printf(s, ": %.3f, ", ms);
}

static void meta(struct writer *w, const char *what, int pid, int tid, const char *name,
                 int sort)
{
    g_string_append_printf(w->meta, "{\"name\": \"%s_name\", \"ph\": \"M\", \"pid\": %d, "
                           "\"tid\": %d, \"args\": {\"name\": ", what, pid, tid);
    rs_json_str(w->meta, name);
    g_string_append(w->meta, "}},\n");
    g_string_append_printf(w->meta, "{\"name\": \"%s_sort_index\", \"ph\": \"M\", \"pid\": %d, "
                           "\"tid\": %d, \"args\": {\"sort_index\": %d}},\n", what, pid, tid,
                           sort);
}

static gint by_ts(gconstpointer a, gconstpointer b)
{
    const struct ev *x = a, *y = b;
    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->order - y->order;
}

struct task_ref {
    const struct rs_npu_kick *kick;
    const struct rs_npu_task *task;     /* NULL: the kick reported no task line */
    int64_t start, end;
    int op, op_task, op_tasks;
};

gboolean rs_trace_write(const char *path, const struct rs_npu_log *log,
                        const struct rs_trace_info *info, GError **err)
{
    guint n = log->kicks->len, inv = (guint)info->invokes;
    if (!n || !inv || n % inv) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QEMU's log has %u completed NPU kicks for %u invokes; the invokes cannot "
                    "be told apart", n, inv);
        return FALSE;
    }
    guint per = n / inv, first = n - per;
    const struct rs_npu_kick *k0 = &g_array_index(log->kicks, struct rs_npu_kick, 0);

    /* the invokes' starts: one offset s0 for back-to-back invokes of known lengths */
    double lo = -1e300, hi = 1e300, cum = 0, cum_last = 0;
    for (guint g = 0; g < inv; g++) {
        int64_t fk = k0[g * per].kick_ns, li = 0;
        for (guint i = g * per; i < (g + 1) * per; i++) {
            li = MAX(li, k0[i].irq_ns);
        }
        double d = info->invoke_ms[g] * 1e6;
        lo = MAX(lo, (double)li - d - cum);
        hi = MIN(hi, (double)fk - cum);
        if (g == inv - 1) {
            cum_last = cum;
        }
        cum += d;
    }
    int64_t fk = k0[first].kick_ns, li = 0;
    for (guint i = first; i < n; i++) {
        li = MAX(li, k0[i].irq_ns);
    }
    double d_last = info->invoke_ms[inv - 1] * 1e6, start_d, unc;
    if (lo <= hi) {
        start_d = (lo + hi) / 2 + cum_last;
        unc = (hi - lo) / 2;
    } else {   /* not back to back after all: this invoke alone */
        double l = (double)li - d_last, h = (double)fk;
        start_d = l <= h ? (l + h) / 2 : h;
        unc = l <= h ? (h - l) / 2 : 0;
    }
    int64_t inv_start = (int64_t)start_d, inv_end = inv_start + (int64_t)d_last;

    struct writer w = { g_array_new(FALSE, FALSE, sizeof(struct ev)), g_string_new(NULL),
                        MIN(inv_start, fk) };

    /* tasks in kick order; operations by regcmd continuity per core */
    g_autoptr(GArray) tasks = g_array_new(FALSE, TRUE, sizeof(struct task_ref));
    int64_t prev_reg[8], prev_delta[8];
    int prev_op[8], ops = 0;
    for (int c = 0; c < 8; c++) {
        prev_reg[c] = -1, prev_delta[c] = 0, prev_op[c] = -1;
    }
    for (guint i = first; i < n; i++) {
        const struct rs_npu_kick *k = &k0[i];
        guint nt = MAX(k->tasks->len, 1);
        uint64_t total = 0, done = 0;
        for (guint t = 0; t < k->tasks->len; t++) {
            total += g_array_index(k->tasks, struct rs_npu_task, t).cycles;
        }
        for (guint t = 0; t < nt; t++) {
            struct task_ref r = { .kick = k };
            r.task = k->tasks->len ? &g_array_index(k->tasks, struct rs_npu_task, t) : NULL;
            uint64_t cyc = r.task ? r.task->cycles : 0;
            r.start = k->kick_ns + (total ? (int64_t)((double)k->npu_ns * done / total) : 0);
            done += cyc;
            r.end = t == nt - 1 ? k->kick_ns + k->npu_ns
                                : k->kick_ns + (total ? (int64_t)((double)k->npu_ns * done /
                                                                  total) : 0);
            int c = k->core & 7;
            int64_t reg = r.task ? r.task->regcmd : k->regcmd, delta = reg - prev_reg[c];
            gboolean cont = prev_reg[c] >= 0 && delta > 0 && delta < 4096 &&
                            !((reg & 0xfff) == 0 && delta != prev_delta[c]);
            if (cont) {
                prev_delta[c] = delta;
                r.op = prev_op[c];
            } else {
                prev_delta[c] = 0;
                r.op = prev_op[c] = ops++;
            }
            prev_reg[c] = reg;
            g_array_append_val(tasks, r);
        }
    }
    g_autofree int *op_count = g_new0(int, (gsize)ops + 1);
    for (guint i = 0; i < tasks->len; i++) {
        struct task_ref *r = &g_array_index(tasks, struct task_ref, i);
        r->op_task = op_count[r->op]++;
    }
    for (guint i = 0; i < tasks->len; i++) {
        struct task_ref *r = &g_array_index(tasks, struct task_ref, i);
        r->op_tasks = op_count[r->op];
    }

    /* tracks */
    g_autofree char *npu_name = g_strdup_printf("NPU (rk3588-npu, %d cores at %.0f MHz)",
                                                info->cores, (double)info->clock_hz / 1e6);
    meta(&w, "process", PID_NPU, 0, npu_name, 1);
    meta(&w, "process", PID_GUEST, 0, "guest (Linux, rocket driver, Teflon)", 2);
    for (int c = 0; c < info->cores; c++) {
        g_autofree char *cn = g_strdup_printf("core %d", c);
        g_autofree char *gn = g_strdup_printf("rocket driver, core %d: IRQ -> next kick", c);
        meta(&w, "thread", PID_NPU, c + 1, cn, c);
        meta(&w, "thread", PID_GUEST, TID_GAPS + c, gn, 1 + c);
    }
    meta(&w, "thread", PID_GUEST, TID_INVOKE, "rocket-infer: TfLiteInterpreterInvoke", 0);

    /* NPU tasks */
    int64_t busy = 0;
    for (guint i = 0; i < tasks->len; i++) {
        struct task_ref *r = &g_array_index(tasks, struct task_ref, i);
        const struct rs_npu_task *t = r->task;
        g_autofree char *name = g_strdup_printf("task %u (op %d)", i, r->op);
        GString *s = slice(&w, name, "npu.task", PID_NPU, r->kick->core + 1, r->start,
                           r->end - r->start);
        char buf[96];
        arg_int(s, "task", i);
        arg_int(s, "op", r->op);
        g_snprintf(buf, sizeof(buf), "%d of %d", r->op_task + 1, r->op_tasks);
        arg_str(s, "op_task", buf);
        arg_int(s, "core", r->kick->core);
        g_snprintf(buf, sizeof(buf), "0x%08x", t ? t->regcmd : r->kick->regcmd);
        arg_str(s, "regcmd", buf);
        if (t) {
            g_snprintf(buf, sizeof(buf), "0x%02x", t->op_en);
            arg_str(s, "op_en", buf);
            char blocks[96];
            arg_str(s, "blocks", rs_op_en_blocks(t->op_en, blocks, sizeof(blocks)));
            arg_int(s, "macs", (int64_t)t->macs);
            arg_int(s, "bytes_read", (int64_t)t->bytes_read);
            arg_int(s, "bytes_written", (int64_t)t->bytes_written);
            arg_int(s, "cycles", (int64_t)t->cycles);
            GString *q = g_string_new(NULL);
            for (guint j = 0; j < t->quirks->len; j++) {
                g_string_append_printf(q, "%s%s", j ? ", " : "", (char *)t->quirks->pdata[j]);
            }
            arg_str(s, "quirks", q->len ? q->str : "none");
            g_string_free(q, TRUE);
            g_snprintf(buf, sizeof(buf), "0x%x", t->error);
            arg_str(s, "error", buf);
        }
        arg_int(s, "npu_ns", r->end - r->start);
        arg_int(s, "kick_vt_ns", r->kick->kick_ns);
        arg_int(s, "irq_vt_ns", r->kick->irq_ns);
        end_event(&w, s, r->start);
        busy += r->end - r->start;
    }
    /* per kick: the interrupt held back by the host; per core: IRQ -> next kick */
    for (guint i = first; i < n; i++) {
        const struct rs_npu_kick *k = &k0[i];
        int64_t model_end = k->kick_ns + k->npu_ns;
        if (k->irq_ns > model_end) {
            GString *s = slice(&w, "waiting for the host's compute", "emulator", PID_NPU,
                               k->core + 1, model_end, k->irq_ns - model_end);
            arg_int(s, "ns", k->irq_ns - model_end);
            arg_str(s, "why", "the interrupt comes at the modelled time or when the host has "
                              "computed the kick, whichever is later; without -icount the "
                              "guest's time runs on meanwhile");
            end_event(&w, s, model_end);
        }
        for (guint j = i + 1; j < n; j++) {
            const struct rs_npu_kick *next = &k0[j];
            if (next->core != k->core) {
                continue;
            }
            if (next->kick_ns >= k->irq_ns) {
                GString *s = slice(&w, "IRQ -> next kick", "driver", PID_GUEST,
                                   TID_GAPS + k->core, k->irq_ns, next->kick_ns - k->irq_ns);
                arg_int(s, "ns", next->kick_ns - k->irq_ns);
                end_event(&w, s, k->irq_ns);
            }
            break;
        }
    }
    /* the invoke */
    g_autofree char *iname = g_strdup_printf("invoke %u of %u", inv, inv);
    GString *s = slice(&w, iname, "guest", PID_GUEST, TID_INVOKE, inv_start, inv_end - inv_start);
    arg_ms(s, "guest_ms", info->invoke_ms[inv - 1]);
    arg_ms(s, "npu_busy_ms", (double)busy / 1e6);
    arg_int(s, "npu_tasks", tasks->len);
    arg_int(s, "npu_ops", ops);
    arg_ms(s, "placement_uncertainty_ms", unc / 1e6);
    arg_str(s, "placement", "rocket-infer times each invoke on the guest's clock; the start is "
                            "placed so that every invoke's NPU tasks fall inside it");
    end_event(&w, s, inv_start);

    g_array_sort(w.evs, by_ts);
    GString *js = g_string_new("{\"traceEvents\": [\n");
    g_string_append(js, w.meta->str);
    for (guint i = 0; i < w.evs->len; i++) {
        struct ev *e = &g_array_index(w.evs, struct ev, i);
        g_string_append_printf(js, "%s%s\n", e->json, i + 1 < w.evs->len ? "," : "");
        g_free(e->json);
    }
    g_string_append(js, "],\n\"otherData\": {");
    GString *o = g_string_new(NULL);
    arg_str(o, "model", info->model);
    arg_str(o, "image", info->image);
    arg_int(o, "cores", info->cores);
    arg_int(o, "clock_hz", info->clock_hz);
    arg_int(o, "invoke", inv);
    arg_int(o, "invokes", inv);
    arg_int(o, "npu_tasks", tasks->len);
    arg_int(o, "npu_kicks", per);
    arg_int(o, "origin_vt_ns", w.t0);
    arg_str(o, "time", "guest virtual time (QEMU_CLOCK_VIRTUAL), microseconds from origin_vt_ns; "
                       "the trailing 1 of each value is a tenth of a nanosecond, so that Perfetto's "
                       "conversion to whole nanoseconds is exact");
    arg_str(o, "source", "QEMU trace events rk3588_npu_kick, _task, _quirk, _done; "
                         "rocket-infer's summary.json");
    g_string_truncate(o, o->len - 2);
    g_string_append_printf(js, "%s}}\n", o->str);
    g_string_free(o, TRUE);
    gboolean ok = g_file_set_contents(path, js->str, (gssize)js->len, err);
    g_string_free(js, TRUE);
    g_string_free(w.meta, TRUE);
    g_array_unref(w.evs);
    return ok;
}
