// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim timing: MobileNetV1 and MobileDet through Teflon on the emulated board under -icount
 * (guest CPU at 1 instruction/ns), beside the published RK3588 board figures
 * (../shared/reference/hardware-notes.md, appendix and 4.4). For each model: the cycle model's
 * NPU time, the guest's inference time, the same with the NPU made free (what the guest's CPU
 * side costs in instructions), and the interrupt-to-next-task gap of the kernel driver. The
 * board's CPU speed is the one thing the published figures do not separate from the NPU's: it is
 * fitted on MobileNetV1 and MobileDet's board time predicted with it. Writes build/timing.json,
 * a timeline picture of one inference per model, build/timing/MODEL-timeline.png, and its
 * Perfetto trace, build/timing/MODEL-trace.json.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rocketsim.h"

#define INVOKES 6
#define BOARD_IRQ_TO_NEXT_TASK_US 20.0   /* hard IRQ ~2 us + threaded handler ~18 us [WID] */

static const char *const MODELS[] = { "mobilenet", "mobiledet" };
/* published end-to-end figures, one core, mainline clock (hardware-notes appendix) */
static const double BOARD_MS[][2] = { { 10.68, 11.18 }, { 33.0, 33.0 } };

struct measured {
    double guest_ms, npu_ms, irq_ns;
    int tasks;
    gboolean have_irq;
};

struct report {
    int tasks;
    double npu_model_ms, guest_icount_ms, guest_icount_npu_free_ms, irq_ns;
    gboolean have_irq;
    double board_ms[2], guest_vs_board, board_irq_path_extra_ms, rate, predicted_board_ms,
        predicted_vs_board;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* statistics.median */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void measure(const char *model, gboolean free_npu, struct measured *m)
{
    g_autofree char *out = g_strdup_printf("%s/build/timing/%s", rs_root(), model);
    struct rs_run_opts o;
    rs_run_defaults(&o);
    o.model = model;
    o.image = "chelsea";
    o.invokes = INVOKES;
    o.icount = 0;
    o.cores = 1;
    o.out = out;
    if (free_npu) {
        o.clock = 1000000000000;
        o.dma_bandwidth = 1000000000000000000;
        o.task_overhead = 0;
    }
    struct rs_run_result res;
    rs_quiet = TRUE;
    int rc = rs_run(&o, &res);
    rs_quiet = FALSE;
    if (rc) {
        rs_fail(1, "the %s run failed (above); its folder: %s", model, out);
    }
    memset(m, 0, sizeof(*m));
    g_autofree double *later = g_new(double, (gsize)res.invokes);
    for (int i = 1; i < res.invokes; i++) {
        later[i - 1] = res.invoke_ms[i];
    }
    m->guest_ms = median(later, (size_t)res.invokes - 1);
    GArray *ns = res.npu.npu_ns, *kicks = res.npu.kicks;
    int64_t sum = 0;
    for (guint i = 0; i < ns->len; i++) {
        sum += g_array_index(ns, int64_t, i);
    }
    m->npu_ms = (double)sum / res.invokes / 1e6;
    m->tasks = (int)ns->len / res.invokes;
    /* interrupt -> next kick (one core: the kicks in order) */
    g_autofree double *gaps = g_new(double, kicks->len + 1);
    size_t ngaps = 0;
    for (guint i = 0; i + 1 < kicks->len; i++) {
        const struct rs_npu_kick *a = &g_array_index(kicks, struct rs_npu_kick, i);
        const struct rs_npu_kick *b = &g_array_index(kicks, struct rs_npu_kick, i + 1);
        gaps[ngaps++] = (double)(b->kick_ns - a->irq_ns);
    }
    if (ngaps) {
        m->irq_ns = median(gaps, ngaps);
        m->have_irq = TRUE;
    }
    if (!free_npu && m->tasks) {
        g_autoptr(GError) err = NULL;
        g_autofree int64_t *spans = g_new(int64_t, 2 * (gsize)m->tasks);
        guint first = kicks->len - (guint)MIN((guint)m->tasks, kicks->len);
        for (guint i = first; i < kicks->len; i++) {
            const struct rs_npu_kick *k = &g_array_index(kicks, struct rs_npu_kick, i);
            spans[2 * (i - first)] = k->kick_ns;
            spans[2 * (i - first) + 1] = k->irq_ns;
        }
        g_autofree char *png = g_strdup_printf("%s/build/timing/%s-timeline.png", rs_root(),
                                               model);
        if (!rs_draw_timeline(png, model, spans, (int)(kicks->len - first), &err)) {
            rs_fail(1, "%s", err->message);
        }
        g_autofree char *trace = g_strdup_printf("%s/build/timing/%s-trace.json", rs_root(),
                                                 model);
        struct rs_trace_info ti = { .model = model, .image = o.image, .cores = o.cores,
                                    .invokes = res.invokes, .clock_hz = o.clock,
                                    .invoke_ms = res.invoke_ms };
        if (!rs_trace_write(trace, &res.npu, &ti, &err)) {
            rs_fail(1, "cannot write the trace: %s", err->message);
        }
    }
    rs_run_result_clear(&res);
}

static void json_num(GString *s, const char *key, double v, gboolean last)
{
    g_autofree char *num = rs_py_float(v);
    g_string_append_printf(s, "  \"%s\": %s%s\n", key, num, last ? "" : ",");
}

static char *report_json(const struct report *r)
{
    GString *s = g_string_new("{\n");
    for (int m = 0; m < 2; m++) {
        const struct report *x = &r[m];
        g_string_append_printf(s, " \"%s\": {\n  \"tasks\": %d,\n", MODELS[m], x->tasks);
        json_num(s, "npu_model_ms", x->npu_model_ms, FALSE);
        json_num(s, "guest_icount_ms", x->guest_icount_ms, FALSE);
        json_num(s, "guest_icount_npu_free_ms", x->guest_icount_npu_free_ms, FALSE);
        if (!x->have_irq) {
            g_string_append(s, "  \"guest_irq_to_next_task_ns\": null,\n");
        } else if (x->irq_ns == floor(x->irq_ns)) {
            g_string_append_printf(s, "  \"guest_irq_to_next_task_ns\": %.0f,\n", x->irq_ns);
        } else {
            json_num(s, "guest_irq_to_next_task_ns", x->irq_ns, FALSE);
        }
        g_autofree char *lo = rs_py_float(x->board_ms[0]), *hi = rs_py_float(x->board_ms[1]);
        g_string_append_printf(s, "  \"board_ms\": [\n   %s,\n   %s\n  ],\n", lo, hi);
        json_num(s, "guest_vs_board", x->guest_vs_board, FALSE);
        json_num(s, "board_irq_path_extra_ms", x->board_irq_path_extra_ms, FALSE);
        json_num(s, "board_cpu_rate_instr_per_ns", rs_round(x->rate, 2), FALSE);
        json_num(s, "predicted_board_ms", x->predicted_board_ms, FALSE);
        json_num(s, "predicted_vs_board", x->predicted_vs_board, TRUE);
        g_string_append_printf(s, " }%s\n", m ? "" : ",");
    }
    g_string_append(s, "}");
    return g_string_free(s, FALSE);
}

int cmd_timing(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx,
        "MobileNetV1 and MobileDet through Teflon on the emulated board under -icount (1 NPU\n"
        "core at 200 MHz), beside the published RK3588 board figures. Writes build/timing.json,\n"
        "build/timing/MODEL-timeline.png and build/timing/MODEL-trace.json (Perfetto).");
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        rs_usage_error(ctx, "%s", err->message);
    }
    if (argc > 1) {
        rs_usage_error(ctx, "unexpected argument '%s'", argv[1]);
    }
    struct report r[2] = { 0 };
    for (int k = 0; k < 2; k++) {
        struct measured m, f;
        rs_step("%s: %d invokes under -icount shift=0, 1 NPU core at 200 MHz", MODELS[k],
                INVOKES);
        measure(MODELS[k], FALSE, &m);
        rs_step("%s: again with the NPU made free (its modelled time ~0)", MODELS[k]);
        measure(MODELS[k], TRUE, &f);
        double lo = BOARD_MS[k][0], hi = BOARD_MS[k][1], board = (lo + hi) / 2;
        struct report *x = &r[k];
        x->tasks = m.tasks;
        x->npu_model_ms = rs_round(m.npu_ms, 2);
        x->guest_icount_ms = rs_round(m.guest_ms, 2);
        x->guest_icount_npu_free_ms = rs_round(f.guest_ms, 2);
        x->irq_ns = m.irq_ns;
        x->have_irq = m.have_irq;
        x->board_ms[0] = lo;
        x->board_ms[1] = hi;
        x->guest_vs_board = rs_round(m.guest_ms / board - 1, 3);
        /* what the board's kernel path adds per task beyond the guest's instructions */
        x->board_irq_path_extra_ms = rs_round(
            m.tasks * (BOARD_IRQ_TO_NEXT_TASK_US - (m.have_irq ? m.irq_ns : 0) / 1e3) / 1e3, 2);
    }
    /* One unknown the anchors cannot give: how fast the board's A76 runs the guest's CPU side.
     * Fit it on MobileNetV1 (board = CPU side / rate + NPU model), then predict MobileDet. */
    struct report *mn = &r[0];
    double rate = mn->guest_icount_npu_free_ms /
                  ((mn->board_ms[0] + mn->board_ms[1]) / 2 - mn->npu_model_ms);
    for (int k = 0; k < 2; k++) {
        struct report *x = &r[k];
        x->rate = rate;
        x->predicted_board_ms = rs_round(x->guest_icount_npu_free_ms / rate + x->npu_model_ms, 2);
        x->predicted_vs_board = rs_round(
            x->predicted_board_ms / ((x->board_ms[0] + x->board_ms[1]) / 2) - 1, 3);
    }
    g_autofree char *json = report_json(r);
    g_autofree char *path = rs_path("build/timing.json");
    if (!g_file_set_contents(path, json, -1, &err)) {
        rs_fail(1, "%s", err->message);
    }
    printf("%-30s %12s %12s\n", "", "MobileNetV1", "MobileDet");
    for (int row = 0; row < 11; row++) {
        static const char *const names[] = {
            "NPU tasks per invoke", "cycle model NPU time, ms", "guest -icount 0, ms",
            "  with the NPU free, ms", "guest IRQ->next task, ns", "board (published), ms",
            "guest vs board", "board kernel path not in guest", "A76 rate fitted on MobileNetV1",
            "predicted board time, ms", "predicted vs board",
        };
        printf("%-30s", names[row]);
        for (int k = 0; k < 2; k++) {
            const struct report *x = &r[k];
            g_autofree char *cell = NULL;
            g_autofree char *lo = rs_py_float(x->board_ms[0]), *hi = rs_py_float(x->board_ms[1]);
            g_autofree char *rate2 = rs_py_float(rs_round(x->rate, 2));
            switch (row) {
            case 0: cell = g_strdup_printf("%d", x->tasks); break;
            case 1: cell = g_strdup_printf("%.2f", x->npu_model_ms); break;
            case 2: cell = g_strdup_printf("%.2f", x->guest_icount_ms); break;
            case 3: cell = g_strdup_printf("%.2f", x->guest_icount_npu_free_ms); break;
            case 4: cell = x->have_irq ? g_strdup_printf("%.0f", x->irq_ns) : g_strdup("-");
                break;
            case 5: cell = g_strdup_printf("%s-%s", lo, hi); break;
            case 6: cell = g_strdup_printf("%+.0f%%", x->guest_vs_board * 100); break;
            case 7: cell = g_strdup_printf("%.2f ms", x->board_irq_path_extra_ms); break;
            case 8: cell = g_strdup_printf("%s i/ns", rate2); break;
            case 9: cell = g_strdup_printf("%.2f", x->predicted_board_ms); break;
            default: cell = g_strdup_printf("%+.1f%%", x->predicted_vs_board * 100); break;
            }
            printf(" %12s", cell);
        }
        printf("\n");
    }
    rs_step("written build/timing.json, build/timing/*-timeline.png and "
            "build/timing/*-trace.json (Perfetto)");
    return 0;
}
