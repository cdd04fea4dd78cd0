// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: the emulated board. QEMU virt with rk3588-npu boots build/Image and
 * build/initramfs.cpio; the guest's init (userspace/init) mounts the shared host folder at
 * /host, runs /host/SCRIPT with its output in SCRIPT.log and its exit status in SCRIPT.status,
 * and powers off. The same command line as sim-tests/board.py, which the pytest suites use.
 */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rocketsim.h"

const char *rs_qemu_binary(void)
{
    static char *qemu;
    if (!qemu) {
        const char *env = g_getenv("ROCKETSIM_QEMU");
        qemu = env && *env ? g_strdup(env) : rs_path("build/qemu-system-aarch64");
    }
    return qemu;
}

/*
 * Guest CPUs when not asked for: what the host can run beside QEMU's NPU worker. A vCPU without
 * a host CPU of its own leaves its sibling spinning in the guest's queued spinlocks (Teflon's
 * setup 2-9x slower on a busy 2-core host), so a process allowed 1-2 CPUs gets 1 vCPU, larger
 * hosts 2 (the guest's userspace is single-threaded; more do not pay). ROCKETSIM_SMP=N overrides.
 */
int rs_default_smp(void)
{
    const char *env = g_getenv("ROCKETSIM_SMP");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end || n < 1 || n > 8) {
            rs_fail(2, "ROCKETSIM_SMP=%s: guest CPUs must be 1 to 8", env);
        }
        return (int)n;
    }
    cpu_set_t set;
    int host = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    return host > 2 ? 2 : 1;
}

void rs_board_check(void)
{
    g_autofree char *image = rs_path("build/Image");
    g_autofree char *initrd = rs_path("build/initramfs.cpio");
    const char *hint = "build the board first: `make board` (QEMU, the guest kernel and its "
                       "initramfs)";
    rs_need_file(rs_qemu_binary(), hint);
    rs_need_file(image, hint);
    rs_need_file(initrd, hint);
}

static void add(GPtrArray *a, const char *s)
{
    g_ptr_array_add(a, g_strdup(s));
}

GPtrArray *rs_qemu_cmd(const struct rs_board *b, const char *append, gboolean interactive)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    add(a, rs_qemu_binary());
    add(a, "-M"), add(a, "virt"), add(a, "-cpu"), add(a, "cortex-a76");
    add(a, "-smp"), g_ptr_array_add(a, g_strdup_printf("%d", b->smp > 0 ? b->smp : rs_default_smp()));
    add(a, "-m"), add(a, b->mem ? b->mem : "1G");
    add(a, "-nodefaults"), add(a, "-nic"), add(a, "none"), add(a, "-no-reboot");
    add(a, "-kernel"), g_ptr_array_add(a, rs_path("build/Image"));
    add(a, "-initrd"), g_ptr_array_add(a, rs_path("build/initramfs.cpio"));
    add(a, "-device");
    GString *dev = g_string_new(NULL);
    g_string_printf(dev, "rk3588-npu,cores=%d", b->cores);
    if (b->quirks) {
        g_string_append_printf(dev, ",quirks=%s", b->quirks);
    }
    if (b->threads > 0) {
        g_string_append_printf(dev, ",threads=%d", b->threads);
    }
    g_ptr_array_add(a, g_string_free(dev, FALSE));
    /* -nodefaults leaves no serial port: name it, with the monitor muxed in (Ctrl-A X quits) */
    add(a, "-display"), add(a, "none"), add(a, "-serial");
    add(a, interactive ? "mon:stdio" : "stdio");
    if (b->icount >= 0) {
        add(a, "-icount"), g_ptr_array_add(a, g_strdup_printf("shift=%d,sleep=off", b->icount));
    }
    GString *app = g_string_new("console=ttyAMA0 quiet");
    if (append && *append) {
        g_string_append_printf(app, " %s", append);
    }
    if (b->share) {
        add(a, "-fsdev");
        g_ptr_array_add(a, g_strdup_printf("local,id=host,path=%s,security_model=none",
                                           b->share));
        add(a, "-device"), add(a, "virtio-9p-device,fsdev=host,mount_tag=host");
        g_string_append(app, " rocketsim.share");
    }
    add(a, "-append"), g_ptr_array_add(a, g_string_free(app, FALSE));
    for (guint i = 0; b->extra && i < b->extra->len; i++) {
        add(a, b->extra->pdata[i]);
    }
    g_ptr_array_add(a, NULL);
    return a;
}

struct boot_io {
    GDataInputStream *in;
    struct rs_boot *r;
    gint64 t0;
    gboolean eof, exited, timed_out;
    GSubprocess *p;
    int timeout_s;
};

static void read_line(struct boot_io *io);

static void got_line(GObject *src, GAsyncResult *res, gpointer data)
{
    struct boot_io *io = data;
    gsize len = 0;
    g_autoptr(GError) err = NULL;
    g_autofree char *line = g_data_input_stream_read_line_finish(io->in, res, &len, &err);
    if (!line) {
        io->eof = TRUE;
        return;
    }
    g_string_append_len(io->r->console, line, (gssize)len);
    g_string_append_c(io->r->console, '\n');
    if (io->r->ready < 0 && strstr(line, "rocketsim: ready at")) {
        io->r->ready = (double)(g_get_monotonic_time() - io->t0) / 1e6;
    }
    read_line(io);
}

static void read_line(struct boot_io *io)
{
    g_data_input_stream_read_line_async(io->in, G_PRIORITY_DEFAULT, NULL, got_line, io);
}

static gboolean boot_timeout(gpointer data)
{
    struct boot_io *io = data;
    io->timed_out = TRUE;
    g_subprocess_force_exit(io->p);
    return G_SOURCE_REMOVE;
}

static char *read_share(const char *share, const char *name)
{
    g_autofree char *path = g_build_filename(share, name, NULL);
    char *text = rs_read_text(path, NULL);
    return text;
}

void rs_boot(const struct rs_board *b, const char *script, int timeout_s, struct rs_boot *r)
{
    g_autofree char *append = g_strdup_printf("rocketsim.run=%s", script);
    g_autoptr(GPtrArray) cmd = rs_qemu_cmd(b, append, FALSE);
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GError) err = NULL;
    struct boot_io io = { .r = r, .t0 = g_get_monotonic_time(), .timeout_s = timeout_s };

    memset(r, 0, sizeof(*r));
    r->console = g_string_new(NULL);
    r->status = -1;
    r->ready = -1;
    g_autoptr(GSubprocess) p = rs_spawn_launcher(l, (const char *const *)cmd->pdata, &err);
    if (!p) {
        rs_exit_if_interrupted();
        rs_fail(1, "cannot start %s: %s", rs_qemu_binary(), err->message);
    }
    io.p = p;
    io.in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
    guint timer = g_timeout_add_seconds((guint)timeout_s, boot_timeout, &io);
    read_line(&io);
    rs_loop_until(&io.eof);
    r->qemu_rc = rs_wait(p);
    if (!io.timed_out) {
        g_source_remove(timer);
    } else {
        g_string_append_printf(r->console, "\n[rocketsim: QEMU killed after %d s]\n", timeout_s);
    }
    g_object_unref(io.in);
    r->timed_out = io.timed_out;
    r->wall = (double)(g_get_monotonic_time() - io.t0) / 1e6;
    rs_exit_if_interrupted();

    g_autofree char *status_name = g_strdup_printf("%s.status", script);
    g_autofree char *log_name = g_strdup_printf("%s.log", script);
    g_autofree char *dmesg_name = g_strdup_printf("%s.dmesg", script);
    g_autofree char *status = b->share ? read_share(b->share, status_name) : NULL;
    char *end = NULL;
    if (status) {
        long v = strtol(g_strstrip(status), &end, 10);
        if (end != status && !*end) {
            r->status = (int)v;
        }
    }
    r->log = b->share ? read_share(b->share, log_name) : NULL;
    r->dmesg = b->share ? read_share(b->share, dmesg_name) : NULL;
    if (!r->log) {
        r->log = g_strdup("");
    }
    if (!r->dmesg) {
        r->dmesg = g_strdup("");
    }
}

void rs_boot_clear(struct rs_boot *r)
{
    if (r->console) {
        g_string_free(r->console, TRUE);
    }
    g_free(r->log);
    g_free(r->dmesg);
    memset(r, 0, sizeof(*r));
}
