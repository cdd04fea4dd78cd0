// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: paths, messages, and the child processes. Every child is registered; SIGINT
 * (Ctrl-C), SIGTERM and SIGHUP send SIGTERM to all of them (SIGKILL to those still there 5 s
 * later, or at a second Ctrl-C), and once they are gone the program says what it stopped and
 * exits with 128 + the signal. The handlers run from GLib's main loop, which every wait spins.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include "rocketsim.h"

const char *rs_prog = "rocketsim";
const char *rs_tag = "[rocketsim]";
gboolean rs_quiet;

const char *rs_root(void)
{
    static char *root;
    if (!root) {
        const char *env = g_getenv("ROCKETSIM_ROOT");
        root = g_canonicalize_filename(env && *env ? env : RS_SOURCE_ROOT, NULL);
    }
    return root;
}

const char *rs_builddir(void)
{
    return RS_BUILD_ROOT;
}

char *rs_path(const char *rel)
{
    return g_build_filename(rs_root(), rel, NULL);
}

char *rs_display_path(const char *path)
{
    g_autofree char *abs = g_canonicalize_filename(path, NULL);
    size_t n = strlen(rs_root());
    if (strncmp(abs, rs_root(), n) == 0 && abs[n] == '/') {
        return g_strdup(abs + n + 1);
    }
    return g_steal_pointer(&abs);
}

void rs_step(const char *fmt, ...)
{
    va_list ap;
    if (rs_quiet) {
        return;
    }
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    printf("%s %s\n", rs_tag, msg);
    fflush(stdout);
}

static void stop_children(void);

void rs_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", rs_prog, msg);
    stop_children();
    exit(status);
}

void rs_usage_error(GOptionContext *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n(`%s --help` lists the options)\n", rs_prog, msg, rs_prog);
    exit(2);
}

gboolean rs_file_exists(const char *path)
{
    return g_file_test(path, G_FILE_TEST_EXISTS);
}

void rs_need_file(const char *path, const char *hint)
{
    if (!rs_file_exists(path)) {
        g_autofree char *shown = rs_display_path(path);
        rs_fail(1, "%s is missing; %s", shown, hint);
    }
}

char *rs_read_text(const char *path, gsize *len)
{
    char *text = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, &text, &n, NULL)) {
        return NULL;
    }
    if (len) {
        *len = n;
    }
    return text;
}

gboolean rs_copy_file(const char *from, const char *to, GError **err)
{
    g_autoptr(GFile) a = g_file_new_for_path(from);
    g_autoptr(GFile) b = g_file_new_for_path(to);
    return g_file_copy(a, b, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, err);
}

/* The last n lines of text, each prefixed with indent, valid UTF-8. */
char *rs_last_lines(const char *text, int n, const char *indent)
{
    g_autofree char *valid = g_utf8_make_valid(text ? text : "", -1);
    g_auto(GStrv) lines = g_strsplit(valid, "\n", -1);
    int count = (int)g_strv_length(lines);
    while (count > 0 && !*g_strstrip(lines[count - 1])) {
        count--;
    }
    GString *s = g_string_new(NULL);
    for (int i = MAX(0, count - n); i < count; i++) {
        g_string_append_printf(s, "%s%s\n", indent, g_strchomp(lines[i]));
    }
    return g_string_free(s, FALSE);
}

/* ---- child processes ---- */

static GPtrArray *children;      /* GSubprocess * */
static volatile gboolean interrupted;
static int interrupt_signal;
static GString *stopped;          /* what an interruption stopped, for the message */

static gboolean kill_hard(gpointer data)
{
    for (guint i = 0; children && i < children->len; i++) {
        g_subprocess_force_exit(children->pdata[i]);
    }
    return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
    if (interrupted) {   /* a second Ctrl-C: no more waiting */
        kill_hard(NULL);
        return G_SOURCE_CONTINUE;
    }
    interrupted = TRUE;
    interrupt_signal = GPOINTER_TO_INT(data);
    for (guint i = 0; children && i < children->len; i++) {
        GSubprocess *p = children->pdata[i];
        const char *pid = g_subprocess_get_identifier(p);
        if (pid) {
            g_string_append_printf(stopped, "%s%s (pid %s)", stopped->len ? ", " : "",
                                   (const char *)g_object_get_data(G_OBJECT(p), "rs-name"), pid);
            g_subprocess_send_signal(p, SIGTERM);
        }
    }
    g_timeout_add_seconds(5, kill_hard, NULL);
    return G_SOURCE_CONTINUE;
}

void rs_signals_init(void)
{
    children = g_ptr_array_new_with_free_func(g_object_unref);
    stopped = g_string_new(NULL);
    g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGINT));
    g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
    g_unix_signal_add(SIGHUP, on_signal, GINT_TO_POINTER(SIGHUP));
}

gboolean rs_interrupted(void)
{
    g_main_context_iteration(NULL, FALSE);   /* dispatch a signal that is pending */
    return interrupted;
}

void rs_loop_until(volatile gboolean *flag)
{
    while (!*flag) {
        g_main_context_iteration(NULL, TRUE);
    }
}

GSubprocess *rs_spawn_launcher(GSubprocessLauncher *l, const char *const *argv, GError **err)
{
    if (interrupted) {
        g_set_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED, "interrupted");
        return NULL;
    }
    GSubprocess *p = g_subprocess_launcher_spawnv(l, argv, err);
    if (p) {
        g_object_set_data_full(G_OBJECT(p), "rs-name", g_path_get_basename(argv[0]), g_free);
        g_ptr_array_add(children, g_object_ref(p));
    }
    return p;
}

void rs_forget(GSubprocess *p)
{
    g_ptr_array_remove(children, p);
}

static void waited(GObject *src, GAsyncResult *res, gpointer data)
{
    g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
    *(gboolean *)data = TRUE;
}

int rs_wait(GSubprocess *p)
{
    gboolean done = FALSE;
    g_subprocess_wait_async(p, NULL, waited, &done);
    rs_loop_until(&done);
    rs_forget(p);
    if (g_subprocess_get_if_exited(p)) {
        return g_subprocess_get_exit_status(p);
    }
    if (g_subprocess_get_if_signaled(p)) {
        return 128 + g_subprocess_get_term_sig(p);
    }
    return -1;
}

/* Stop whatever still runs (an error exit, or after an interruption) and wait for it. */
static void stop_children(void)
{
    if (!children) {
        return;
    }
    while (children->len) {
        GSubprocess *p = g_object_ref(children->pdata[0]);
        if (g_subprocess_get_identifier(p)) {
            g_subprocess_send_signal(p, SIGTERM);
            if (!interrupted) {
                interrupted = TRUE;
                g_timeout_add_seconds(5, kill_hard, NULL);
            }
        }
        rs_wait(p);
        g_object_unref(p);
    }
}

void rs_exit_if_interrupted(void)
{
    if (!rs_interrupted()) {
        return;
    }
    stop_children();
    fflush(stdout);
    fprintf(stderr, "\n%s: interrupted by %s%s%s; exiting\n", rs_prog,
            interrupt_signal == SIGINT ? "Ctrl-C" : g_strsignal(interrupt_signal),
            stopped->len ? "; stopped " : "", stopped->str);
    exit(128 + interrupt_signal);
}

struct capture {
    gboolean done;
    char *out, *err;
};

static void communicated(GObject *src, GAsyncResult *res, gpointer data)
{
    struct capture *c = data;
    g_subprocess_communicate_utf8_finish(G_SUBPROCESS(src), res, &c->out, &c->err, NULL);
    c->done = TRUE;
}

int rs_run_capture(const char *const *argv, char **out, char **err)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        (out ? G_SUBPROCESS_FLAGS_STDOUT_PIPE : G_SUBPROCESS_FLAGS_STDOUT_SILENCE) |
        G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GError) e = NULL;
    g_autoptr(GSubprocess) p = rs_spawn_launcher(l, argv, &e);
    struct capture c = { 0 };
    if (!p) {
        rs_exit_if_interrupted();
        if (err) {
            *err = g_strdup(e->message);
        }
        return -1;
    }
    g_subprocess_communicate_utf8_async(p, NULL, NULL, communicated, &c);
    rs_loop_until(&c.done);
    int rc = rs_wait(p);
    rs_exit_if_interrupted();
    if (out) {
        *out = g_strchomp(c.out ? c.out : g_strdup(""));
    } else {
        g_free(c.out);
    }
    if (err) {
        *err = c.err ? c.err : g_strdup("");
    } else {
        g_free(c.err);
    }
    return rc;
}

/* A float as Python's repr writes it (0.4, 0.35, 1.0, 33.0): the shortest that reads back. */
char *rs_py_float(double v)
{
    char buf[64];
    for (int p = 1; p <= 17; p++) {
        g_snprintf(buf, sizeof(buf), "%.*g", p, v);
        if (g_ascii_strtod(buf, NULL) == v) {
            break;
        }
    }
    if (!strpbrk(buf, ".eni")) {
        g_strlcat(buf, ".0", sizeof(buf));
    }
    return g_strdup(buf);
}

/* Python's round(x, digits): the decimal nearest the double, as a double. */
double rs_round(double x, int digits)
{
    char buf[512];
    g_snprintf(buf, sizeof(buf), "%.*f", digits, x);
    return g_ascii_strtod(buf, NULL);
}
