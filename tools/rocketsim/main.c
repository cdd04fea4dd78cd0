// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: the project's host command.
 *
 *   rocketsim run [OPTIONS]      a model through Mesa Teflon on the emulated board (make run)
 *   rocketsim shell [OPTIONS]    the board with a shell on the console (make shell)
 *   rocketsim timing             times under -icount beside the board's figures (make timing)
 *   rocketsim bench [OPTIONS]    the core's speed on MobileDet's layers (make bench)
 *   rocketsim replay ARGS...     rknpu-run: a recorded NPU job on the host core
 *   rocketsim dis ARGS...        rknpu-dis: a regcmd buffer, decoded
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rocketsim.h"

static const char USAGE[] =
    "Usage: rocketsim COMMAND [OPTIONS]\n"
    "\n"
    "The RK3588 NPU emulator's host command.\n"
    "\n"
    "Commands:\n"
    "  run      a model through Mesa Teflon on the emulated board: answer, CPU reference,\n"
    "           times, annotated photo, Perfetto trace (make run)\n"
    "  shell    boot the emulated board with a shell on the console (make shell)\n"
    "  timing   MobileNetV1 and MobileDet times under -icount beside the board's published\n"
    "           figures, timeline pictures (make timing)\n"
    "  bench    MobileDet's conv/depthwise layers through the core: core-bench GMAC/s\n"
    "           (make bench)\n"
    "  replay   run a recorded NPU job on the host core (rknpu-run; `replay --help`)\n"
    "  dis      decode a regcmd buffer (rknpu-dis)\n"
    "\n"
    "`rocketsim COMMAND --help` shows a command's options.\n";

/* shell: exec QEMU with the console on this terminal */
static int cmd_shell_impl(int argc, char **argv)
{
    int cores = 3, icount = G_MININT, smp = 0;
    char *mem = NULL, *quirks = NULL, *share = NULL;
    GOptionEntry entries[] = {
        { "cores", 0, 0, G_OPTION_ARG_INT, &cores, "NPU cores, 1 to 3 (default 3)", "N" },
        { "mem", 0, 0, G_OPTION_ARG_STRING, &mem, "guest RAM (default 1G)", "SIZE" },
        { "smp", 0, 0, G_OPTION_ARG_INT, &smp,
          "guest CPUs, 1 to 8 (default: 1 on a host with 2 CPUs or fewer, else 2)", "N" },
        { "quirks", 0, 0, G_OPTION_ARG_STRING, &quirks,
          "the NPU's hardware quirks: on (default), off, all, +name,-name", "SPEC" },
        { "icount", 0, 0, G_OPTION_ARG_INT, &icount,
          "guest CPU at 2^SHIFT ns per instruction (-icount)", "SHIFT" },
        { "share", 0, 0, G_OPTION_ARG_FILENAME, &share,
          "a host folder to mount at /host in the guest", "DIR" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx,
        "Boot the emulated board with a shell on the console: `exit` powers it off,\n"
        "Ctrl-A X quits QEMU.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        rs_usage_error(ctx, "%s", err->message);
    }
    if (argc > 1) {
        rs_usage_error(ctx, "unexpected argument '%s'", argv[1]);
    }
    if (cores < 1 || cores > 3) {
        rs_usage_error(ctx, "--cores must be 1, 2 or 3, not %d", cores);
    }
    if (smp && (smp < 1 || smp > 8)) {
        rs_usage_error(ctx, "--smp takes 1 to 8 guest CPUs, not %d", smp);
    }
    if (icount != G_MININT && (icount < 0 || icount > 10)) {
        rs_usage_error(ctx, "--icount takes a shift of 0 to 10, not %d", icount);
    }
    if (share && !g_file_test(share, G_FILE_TEST_IS_DIR)) {
        rs_usage_error(ctx, "--share %s is not a folder", share);
    }
    rs_board_check();
    g_autofree char *share_abs = share ? g_canonicalize_filename(share, NULL) : NULL;
    struct rs_board b = { .cores = cores, .mem = mem ? mem : "1G", .share = share_abs,
                          .icount = icount == G_MININT ? -1 : icount, .smp = smp,
                          .quirks = quirks };
    g_autoptr(GPtrArray) cmd = rs_qemu_cmd(&b, "rocketsim.shell", TRUE);
    execv(cmd->pdata[0], (char **)cmd->pdata);
    rs_fail(1, "cannot run %s: %s", (char *)cmd->pdata[0], g_strerror(errno));
}

int cmd_shell(int argc, char **argv)
{
    return cmd_shell_impl(argc, argv);
}

/* replay, dis: the job tools built beside this program */
static int exec_tool(const char *tool, int argc, char **argv)
{
    g_autofree char *path = g_build_filename(rs_builddir(), "qemu-hw", "tools", tool, NULL);
    rs_need_file(path, "build it first: `ninja -C build` (or `make build`)");
    argv[0] = path;
    execv(path, argv);
    rs_fail(1, "cannot run %s: %s", path, g_strerror(errno));
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "run", cmd_run }, { "shell", cmd_shell }, { "timing", cmd_timing },
        { "bench", cmd_bench },
    };
    const char *name = argv[1];
    if (!strcmp(name, "replay") || !strcmp(name, "dis")) {
        rs_prog = !strcmp(name, "dis") ? "rocketsim dis" : "rocketsim replay";
        return exec_tool(!strcmp(name, "dis") ? "rknpu-dis" : "rknpu-run", argc - 1, argv + 1);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        if (!strcmp(name, cmds[i].name)) {
            rs_prog = g_strdup_printf("rocketsim %s", name);
            rs_tag = g_strdup_printf("[rocketsim %s]", name);
            g_set_prgname(rs_prog);
            rs_signals_init();
            /* the command's options: argv[0] becomes "rocketsim NAME" for --help */
            argv[1] = (char *)rs_prog;
            int rc = cmds[i].fn(argc - 1, argv + 1);
            rs_exit_if_interrupted();
            return rc;
        }
    }
    fprintf(stderr, "rocketsim: unknown command '%s'\n\n%s", name, USAGE);
    return 2;
}
