// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: QEMU's NPU trace events (qemu-hw/qemu/trace-events), as the log backend writes
 * them to the -D file, one per line:
 *
 *   rk3588_npu_kick core C regcmd 0x.. task_con 0x.. vt_ns T        the driver's kick
 *   rk3588_npu_task core C task K regcmd .. op_en .. macs .. read .. written .. cycles .. error ..
 *   rk3588_npu_quirk core C task K: hardware quirk NAME             after its task's line
 *   rk3588_npu_done core C tasks N raw_status .. cycles .. npu_time_ns D vt_ns T   the interrupt
 *   rk3588_npu_suspend / rerun / abort core C ...                   a kick cancelled or redone
 *
 * A core's task and quirk lines come between its kick and its done (the worker runs the kick in
 * between; one log, written in order). vt_ns is QEMU_CLOCK_VIRTUAL, the guest's time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rocketsim.h"

#define MAX_CORES 8

static void task_clear(gpointer data)
{
    struct rs_npu_task *t = data;
    if (t->quirks) {
        g_ptr_array_unref(t->quirks);
    }
}

static void kick_init(struct rs_npu_kick *k)
{
    memset(k, 0, sizeof(*k));
    k->irq_ns = -1;
    k->tasks = g_array_new(FALSE, TRUE, sizeof(struct rs_npu_task));
    g_array_set_clear_func(k->tasks, task_clear);
}

static void kick_clear(gpointer data)
{
    struct rs_npu_kick *k = data;
    if (k->tasks) {
        g_array_unref(k->tasks);
        k->tasks = NULL;
    }
}

static gint by_kick_time(gconstpointer a, gconstpointer b)
{
    const struct rs_npu_kick *x = a, *y = b;
    return x->kick_ns < y->kick_ns ? -1 : x->kick_ns > y->kick_ns;
}

gboolean rs_npu_log_read(const char *path, struct rs_npu_log *log, GError **err)
{
    gsize len;
    g_autofree char *text = NULL;
    struct rs_npu_kick cur[MAX_CORES];
    gboolean open_kick[MAX_CORES] = { 0 };

    memset(log, 0, sizeof(*log));
    log->kicks = g_array_new(FALSE, TRUE, sizeof(struct rs_npu_kick));
    g_array_set_clear_func(log->kicks, kick_clear);
    log->npu_ns = g_array_new(FALSE, TRUE, sizeof(int64_t));
    if (!g_file_get_contents(path, &text, &len, err)) {
        return FALSE;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = 0;
        }
        const char *ev = strstr(line, "rk3588_npu_");
        unsigned core, task, regcmd, con, op_en, error, tasks, raw;
        uint64_t macs, rd, wr, cycles;
        int64_t vt, ns;
        char name[64];
        if (!ev) {
            continue;
        }
        ev += strlen("rk3588_npu_");
        if (sscanf(ev, "kick core %u regcmd %x task_con %x vt_ns %" SCNd64, &core, &regcmd, &con,
                   &vt) == 4 && core < MAX_CORES) {
            if (open_kick[core]) {
                kick_clear(&cur[core]);
            }
            kick_init(&cur[core]);
            cur[core].core = (int)core;
            cur[core].regcmd = regcmd;
            cur[core].task_con = con;
            cur[core].kick_ns = vt;
            open_kick[core] = TRUE;
        } else if (sscanf(ev, "task core %u task %u regcmd %x op_en %x macs %" SCNu64
                          " read %" SCNu64 " written %" SCNu64 " cycles %" SCNu64 " error %x",
                          &core, &task, &regcmd, &op_en, &macs, &rd, &wr, &cycles,
                          &error) == 9 && core < MAX_CORES && open_kick[core]) {
            struct rs_npu_task t = { .kick_task = task, .regcmd = regcmd, .op_en = op_en,
                                     .error = error, .macs = macs, .bytes_read = rd,
                                     .bytes_written = wr, .cycles = cycles,
                                     .quirks = g_ptr_array_new_with_free_func(g_free) };
            g_array_append_val(cur[core].tasks, t);
        } else if (sscanf(ev, "quirk core %u task %u: hardware quirk %63s", &core, &task,
                          name) == 3 && core < MAX_CORES && open_kick[core]) {
            GArray *ts = cur[core].tasks;
            for (guint i = ts->len; i-- > 0;) {
                struct rs_npu_task *t = &g_array_index(ts, struct rs_npu_task, i);
                if (t->kick_task == task) {
                    g_ptr_array_add(t->quirks, g_strdup(name));
                    break;
                }
            }
        } else if (sscanf(ev, "done core %u tasks %u raw_status %x cycles %" SCNu64
                          " npu_time_ns %" SCNd64 " vt_ns %" SCNd64, &core, &tasks, &raw, &cycles,
                          &ns, &vt) == 6 && core < MAX_CORES) {
            g_array_append_val(log->npu_ns, ns);
            if (open_kick[core]) {
                cur[core].irq_ns = vt;
                cur[core].npu_ns = ns;
                cur[core].cycles = cycles;
                cur[core].tasks_done = tasks;
                cur[core].raw_status = raw;
                g_array_append_val(log->kicks, cur[core]);
                open_kick[core] = FALSE;
            }
        } else if ((sscanf(ev, "suspend core %u", &core) == 1 ||
                    sscanf(ev, "rerun core %u", &core) == 1) && core < MAX_CORES &&
                   open_kick[core]) {
            g_array_set_size(cur[core].tasks, 0);   /* the kick runs again: its tasks too */
        } else if (sscanf(ev, "abort core %u", &core) == 1 && core < MAX_CORES &&
                   open_kick[core]) {
            kick_clear(&cur[core]);
            open_kick[core] = FALSE;
        }
    }
    for (int c = 0; c < MAX_CORES; c++) {
        if (open_kick[c]) {
            kick_clear(&cur[c]);
        }
    }
    g_array_sort(log->kicks, by_kick_time);   /* stable (GLib >= 2.32) */
    return TRUE;
}

void rs_npu_log_clear(struct rs_npu_log *log)
{
    if (log->kicks) {
        g_array_unref(log->kicks);
    }
    if (log->npu_ns) {
        g_array_unref(log->npu_ns);
    }
    memset(log, 0, sizeof(*log));
}

/* The blocks an op_en bitmap enables (qemu-hw/core/hwchoices.h RN_OPEN_*). */
const char *rs_op_en_blocks(uint32_t op_en, char *buf, size_t len)
{
    static const struct { uint32_t bit; const char *name; } blocks[] = {
        { 1u << 0, "CNA" }, { 1u << 2, "CORE" }, { 1u << 3, "DPU" }, { 1u << 4, "DPU_RDMA" },
        { 1u << 5, "PPU" }, { 1u << 6, "PPU_RDMA" },
    };
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
        if (op_en & blocks[i].bit) {
            at += (size_t)snprintf(buf + at, at < len ? len - at : 0, "%s%s", at ? "+" : "",
                                   blocks[i].name);
        }
    }
    if (!at) {
        snprintf(buf, len, "none");
    }
    return buf;
}
