/*
 * libFuzzer target for the whole rk3588-npu device in QEMU: a qtest driver, in the manner of
 * QEMU's own device fuzzing, that programs the NPU the way the Linux drivers do and the way they
 * never would.
 *
 * The fuzzer starts qemu-system-aarch64 -M virt -accel qtest -device rk3588-npu,cores=3 once and
 * keeps it; each input begins with a system_reset, fresh IOMMU page tables (IOVA 0..16 MiB onto
 * guest RAM) and a zeroed work area, then runs a list of operations decoded from the input: MMIO
 * to the three cores, their IOMMU banks and the reset controller (registers the drivers use, any
 * offset, any size), regcmd buffers built from a conv/depthwise template with register overrides
 * (linked into multi-task chains or not, at IOVAs or physical addresses), data fills, PTE and DTE
 * rewrites (unmapped, read-only, MMIO, beyond RAM, 40-bit), zaps, kicks as rocket submits them,
 * waits for the interrupt, the driver's IRQ path, clock steps, reset pulses, stop/cont (cancel and
 * re-run), a live migration to /dev/null (pre_save mid-kick), a system reset, and raw bytes of the
 * input written to an IOVA (the core fuzzer's memory images become seeds that way).
 *
 * Findings: QEMU dies (an ASan/UBSan report, an abort: its output is printed) or stops answering
 * for QTEST_TIMEOUT_S (the main loop blocked). Either aborts this process, so libFuzzer keeps the
 * input as crash-*.
 *
 * Coverage: with the sanitizer build (scripts/build-qemu asan, build/qemu-asan) the device's files
 * carry SanitizerCoverage 8-bit counters; fuzz-qemu-cov.c tells us where they are, and we read and
 * clear them in the QEMU process (process_vm_readv/writev) around every input and hand them to
 * libFuzzer as extra counters. With the plain build there is no device feedback (a warning says
 * so): the fuzzer still mutates the seeds and catches crashes and hangs.
 *
 * Environment: ROCKETSIM_QEMU (default build/qemu-asan, else build/qemu-system-aarch64, from the
 * current folder); FUZZ_QEMU_VERBOSE=1 prints every qtest command; FUZZ_QEMU_ARGS adds QEMU
 * options (space-separated; e.g. "-D /tmp/log -trace rk3588_npu_*" to see what an input does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "regdb.h"

#define QTEST_TIMEOUT_S 30
#define RAM_BASE 0x40000000ull
#define RAM_SIZE "64M"
#define NPU_BASE 0x0A100000ull
#define CORE_STRIDE 0x10000ull
#define RESET_REG (NPU_BASE + 0x30000)
#define SPI_BASE 176
#define CORES 3
#define PT_BASE (RAM_BASE + 0x100000)          /* DT, 4 PTs, then pages the fuzzer may use */
#define PT_SPARE (PT_BASE + 0x8000)
#define WIN_PA (RAM_BASE + 0x1000000)          /* IOVA 0..16 MiB -> here when paging is on */
#define WIN_SIZE 0x1000000u
#define SLOT_SIZE 0x4000u                      /* regcmd slots at IOVA 0, 16 of them */
#define NSLOTS 16
#define IN_IOVA 0x100000u
#define WT_IOVA 0x400000u
#define BIAS_IOVA 0x700000u
#define OUT_IOVA 0x800000u
#define MAX_OPS 48

/* ---- the QEMU under test ---- */

static struct {
    pid_t pid;
    int qt, qmp;
    char dir[64], out[96];
    char *rbuf;
    size_t rlen, rcap;
    bool irq[512];
    bool kicked[CORES];      /* kicked since the last IRQ acknowledge or reset */
    uint64_t cov_addr;
    size_t cov_len;
    uint8_t *cov, *zero;
    const char *bin;
    bool verbose;
} Q;

/* libFuzzer's extra counters: the device's edge counters, folded into 64 KiB */
#define EXTRA 65536
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t extra[EXTRA];
static uint8_t *seen;               /* every device counter ever non-zero (for the stats) */
static size_t seen_n, runs;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void qemu_output_tail(void)
{
    FILE *f = fopen(Q.out, "r");
    char buf[8192];
    long len;
    size_t n;
    if (!f) {
        return;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, len > (long)sizeof(buf) - 1 ? len - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    fprintf(stderr, "---- QEMU output (tail) ----\n%s\n----\n", buf);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    int st;
    fprintf(stderr, "fuzz-qemu: FINDING: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (Q.pid > 0 && waitpid(Q.pid, &st, WNOHANG) == Q.pid) {
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "fuzz-qemu: QEMU killed by signal %d\n", WTERMSIG(st));
        } else {
            fprintf(stderr, "fuzz-qemu: QEMU exited with status %d\n", WEXITSTATUS(st));
        }
        Q.pid = 0;
    }
    usleep(200000);   /* let a sanitizer report finish writing */
    qemu_output_tail();
    abort();
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            die("QEMU closed its socket (crashed?)");
        }
        s += k;
        n -= (size_t)k;
    }
}

/* One line from fd (without the newline) into a buffer that stays valid until the next call. */
static char *read_line(int fd, char **buf, size_t *len, size_t *cap)
{
    static char *line;
    static size_t line_cap;
    for (;;) {
        char *nl = *len ? memchr(*buf, '\n', *len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - *buf);
            if (n + 1 > line_cap) {
                line_cap = n + 1;
                line = realloc(line, line_cap);
            }
            memcpy(line, *buf, n);
            line[n] = 0;
            memmove(*buf, nl + 1, *len - n - 1);
            *len -= n + 1;
            return line;
        }
        if (*len + 65536 > *cap) {
            *cap = (*len + 65536) * 2;
            *buf = realloc(*buf, *cap);
        }
        struct pollfd p = { fd, POLLIN, 0 };
        int r = poll(&p, 1, QTEST_TIMEOUT_S * 1000);
        if (r == 0) {
            die("QEMU did not answer for %d s (main loop blocked)", QTEST_TIMEOUT_S);
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll: %s", strerror(errno));
        }
        ssize_t k = recv(fd, *buf + *len, *cap - *len, 0);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            die("QEMU closed its socket (crashed?)");
        }
        *len += (size_t)k;
    }
}

/* A qtest command; returns what follows "OK" (NULL on FAIL/ERR, which are not findings). */
static const char *qt(const char *fmt, ...)
{
    static char *cmd;
    static size_t cmd_cap;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(cmd, cmd_cap, fmt, ap);
    va_end(ap);
    if ((size_t)n + 2 > cmd_cap) {
        cmd_cap = (size_t)n + 2;
        cmd = realloc(cmd, cmd_cap);
        va_start(ap, fmt);
        vsnprintf(cmd, cmd_cap, fmt, ap);
        va_end(ap);
    }
    if (Q.verbose) {
        fprintf(stderr, "qtest> %.200s\n", cmd);
    }
    cmd[n] = '\n';
    send_all(Q.qt, cmd, (size_t)n + 1);
    cmd[n] = 0;
    for (;;) {
        char *l = read_line(Q.qt, &Q.rbuf, &Q.rlen, &Q.rcap);
        unsigned num;
        if (!strncmp(l, "IRQ raise ", 10) && sscanf(l + 10, "%u", &num) == 1 && num < 512) {
            Q.irq[num] = true;
            continue;
        }
        if (!strncmp(l, "IRQ lower ", 10) && sscanf(l + 10, "%u", &num) == 1 && num < 512) {
            Q.irq[num] = false;
            continue;
        }
        if (!strncmp(l, "OK", 2)) {
            return l[2] == ' ' ? l + 3 : l + 2;
        }
        return NULL;
    }
}

static uint64_t readl(uint64_t a)
{
    const char *r = qt("readl 0x%llx", (unsigned long long)a);
    return r ? strtoull(r, NULL, 16) : 0;
}

static void writel(uint64_t a, uint32_t v)
{
    qt("writel 0x%llx 0x%x", (unsigned long long)a, v);
}

static void memwrite(uint64_t a, const uint8_t *p, size_t n)
{
    static char *hex;
    static size_t hex_cap;
    static const char digits[] = "0123456789abcdef";
    if (!n) {
        return;
    }
    if (2 * n + 1 > hex_cap) {
        hex_cap = 2 * n + 1;
        hex = realloc(hex, hex_cap);
    }
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 15];
    }
    hex[2 * n] = 0;
    qt("write 0x%llx 0x%zx 0x%s", (unsigned long long)a, n, hex);
}

static void clock_step(uint64_t ns)
{
    qt("clock_step %llu", (unsigned long long)ns);
}

static bool irq(unsigned spi)
{
    qt("endianness");   /* a round trip: IRQ messages sent before it have arrived */
    return spi < 512 && Q.irq[spi];
}

/* QMP: send a command, return its answer line (NULL for an error); with want_event, also wait
 * for that event. */
static const char *qmp(const char *cmd, const char *want_event)
{
    static char *buf, answer[4096];
    static size_t len, cap;
    bool answered = false, event = !want_event, ok = true;
    char line[256];
    if (strchr(cmd, '{')) {   /* already a whole command */
        snprintf(line, sizeof(line), "%s\n", cmd);
    } else {
        snprintf(line, sizeof(line), "{\"execute\": \"%s\"}\n", cmd);
    }
    if (Q.verbose) {
        fprintf(stderr, "qmp> %s", line);
    }
    send_all(Q.qmp, line, strlen(line));
    while (!answered || !event) {
        char *l = read_line(Q.qmp, &buf, &len, &cap);
        if (strstr(l, "\"return\"")) {
            answered = true;
            snprintf(answer, sizeof(answer), "%s", l);
        } else if (strstr(l, "\"error\"")) {
            answered = true;
            ok = false;
            event = true;
        } else if (want_event && strstr(l, want_event)) {
            event = true;
        }
    }
    return ok ? answer : NULL;
}

/* The GIC's QOM path from qom-list, for irq_intercept_in. */
static void intercept_gic(void)
{
    static char *buf;
    static size_t len, cap;
    const char *cmd = "{\"execute\": \"qom-list\", \"arguments\": {\"path\": "
                      "\"/machine/unattached\"}}\n";
    send_all(Q.qmp, cmd, strlen(cmd));
    char *l;
    do {
        l = read_line(Q.qmp, &buf, &len, &cap);
    } while (!strstr(l, "\"return\""));
    const char *t = strstr(l, "\"child<arm_gic>\"");
    if (!t) {
        t = strstr(l, "\"child<arm-gicv3>\"");
    }
    if (!t) {
        die("no GIC in qom-list");
    }
    const char *n = t;
    while (n > l && strncmp(n, "\"name\": \"", 9)) {
        n--;
    }
    char name[64];
    if (sscanf(n, "\"name\": \"%63[^\"]\"", name) != 1) {
        die("cannot parse qom-list");
    }
    if (!qt("irq_intercept_in /machine/unattached/%s", name)) {
        die("irq_intercept_in failed");
    }
}

static int listen_at(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1)) {
        perror(path);
        exit(2);
    }
    return fd;
}

static int accept_within(int fd, int seconds)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, seconds * 1000) != 1) {
        die("QEMU did not connect within %d s", seconds);
    }
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
        die("accept: %s", strerror(errno));
    }
    close(fd);
    return c;
}

static void stop_qemu(void)
{
    if (Q.pid > 0) {
        kill(Q.pid, SIGKILL);
        waitpid(Q.pid, NULL, 0);
        Q.pid = 0;
    }
    if (Q.dir[0]) {
        char p[128];
        const char *names[] = { "qt.sock", "qmp.sock", "cov", "out" };
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof(p), "%s/%s", Q.dir, names[i]);
            unlink(p);
        }
        rmdir(Q.dir);
        Q.dir[0] = 0;
    }
}

static void report(void)
{
    if (Q.cov_len) {
        fprintf(stderr, "fuzz-qemu: %zu inputs; device edges covered %zu of %zu (%.1f%%)\n",
                runs, seen_n, Q.cov_len, 100.0 * (double)seen_n / (double)Q.cov_len);
    } else {
        fprintf(stderr, "fuzz-qemu: %zu inputs; no device coverage counters (plain QEMU build)\n",
                runs);
    }
}

static void at_exit(void)
{
    report();
    stop_qemu();
}

static void start_qemu(void)
{
    char qt_path[96], qmp_path[96], cov_path[96], qt_arg[128], qmp_arg[128];
    struct stat st;
    Q.verbose = getenv("FUZZ_QEMU_VERBOSE") != NULL;
    Q.bin = getenv("ROCKETSIM_QEMU");
    if (!Q.bin) {
        Q.bin = stat("build/qemu-asan", &st) == 0 ? "build/qemu-asan"
                                                  : "build/qemu-system-aarch64";
    }
    snprintf(Q.dir, sizeof(Q.dir), "/tmp/fuzz-qemu-XXXXXX");
    if (!mkdtemp(Q.dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(qt_path, sizeof(qt_path), "%s/qt.sock", Q.dir);
    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", Q.dir);
    snprintf(cov_path, sizeof(cov_path), "%s/cov", Q.dir);
    snprintf(Q.out, sizeof(Q.out), "%s/out", Q.dir);
    int lqt = listen_at(qt_path), lqmp = listen_at(qmp_path);
    snprintf(qt_arg, sizeof(qt_arg), "unix:%s", qt_path);
    snprintf(qmp_arg, sizeof(qmp_arg), "socket,path=%s,id=qmp", qmp_path);
    Q.pid = fork();
    if (Q.pid == 0) {
        int fd = open(Q.out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        fd = open("/dev/null", O_RDONLY);
        dup2(fd, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("ROCKETSIM_COV_INFO", cov_path, 1);
        /* a sanitizer report ends QEMU (and so the input); leaks are not looked for */
        setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1:disable_coredump=1", 0);
        setenv("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1", 0);
        char *argv[64] = {
            (char *)Q.bin, "-M", "virt", "-accel", "qtest", "-m", RAM_SIZE, "-display", "none",
            "-nodefaults", "-nic", "none", "-qtest", qt_arg, "-qtest-log", "/dev/null",
            "-chardev", qmp_arg, "-mon", "chardev=qmp,mode=control",
            "-d", "guest_errors,unimp", "-D", "/dev/null",
            "-device", "rk3588-npu,id=npu,cores=3", NULL };
        int argc = 0;
        while (argv[argc]) {
            argc++;
        }
        char *extra_args = getenv("FUZZ_QEMU_ARGS") ? strdup(getenv("FUZZ_QEMU_ARGS")) : NULL;
        for (char *t = extra_args ? strtok(extra_args, " ") : NULL; t && argc < 63;
             t = strtok(NULL, " ")) {
            argv[argc++] = t;
        }
        argv[argc] = NULL;
        execv(Q.bin, argv);
        fprintf(stderr, "exec %s: %s\n", Q.bin, strerror(errno));
        _exit(127);
    }
    Q.qt = accept_within(lqt, 60);
    Q.qmp = accept_within(lqmp, 60);
    Q.rlen = 0;
    memset(Q.irq, 0, sizeof(Q.irq));
    qmp("qmp_capabilities", NULL);
    intercept_gic();

    FILE *f = fopen(cov_path, "r");
    unsigned long long a, b;
    if (f && fscanf(f, "%llx %llx", &a, &b) == 2 && b > a) {
        Q.cov_addr = a;
        Q.cov_len = (size_t)(b - a);
        Q.cov = calloc(1, Q.cov_len);
        Q.zero = calloc(1, Q.cov_len);
        if (!seen) {
            seen = calloc(1, Q.cov_len);
        }
        fprintf(stderr, "fuzz-qemu: %s, %zu device edge counters\n", Q.bin, Q.cov_len);
    } else {
        fprintf(stderr, "fuzz-qemu: WARNING: %s has no device coverage counters (build them with "
                "scripts/build-qemu asan): no coverage feedback from the device\n", Q.bin);
    }
    if (f) {
        fclose(f);
    }
}

static void cov_clear(void)
{
    struct iovec l = { Q.zero, Q.cov_len }, r = { (void *)(uintptr_t)Q.cov_addr, Q.cov_len };
    if (Q.cov_len && process_vm_writev(Q.pid, &l, 1, &r, 1, 0) != (ssize_t)Q.cov_len) {
        die("cannot clear QEMU's counters: %s", strerror(errno));
    }
}

static void cov_collect(void)
{
    struct iovec l = { Q.cov, Q.cov_len }, r = { (void *)(uintptr_t)Q.cov_addr, Q.cov_len };
    if (!Q.cov_len) {
        return;
    }
    if (process_vm_readv(Q.pid, &l, 1, &r, 1, 0) != (ssize_t)Q.cov_len) {
        die("cannot read QEMU's counters: %s", strerror(errno));
    }
    for (size_t i = 0; i < Q.cov_len; i++) {
        uint8_t v = Q.cov[i];
        if (v) {
            uint8_t *e = &extra[i % EXTRA];
            *e = *e > v ? *e : v;
            if (!seen[i]) {
                seen[i] = 1;
                seen_n++;
            }
        }
    }
}

/* ---- page tables and the work area ---- */

static uint32_t v2(uint64_t pa)
{
    return (uint32_t)(pa & 0xFFFFF000u) | (uint32_t)((pa >> 32) & 0xF) << 8 |
           (uint32_t)((pa >> 36) & 0xF) << 4;
}

static uint8_t tables[5 * 4096];

static void build_tables(void)
{
    uint32_t *dt = (uint32_t *)tables;
    for (uint32_t i = 0; i < WIN_SIZE >> 22; i++) {
        uint64_t pt = PT_BASE + 0x1000 * (1 + i);
        uint32_t *pte = (uint32_t *)(tables + 0x1000 * (1 + i));
        dt[i] = v2(pt) | 1;
        for (uint32_t j = 0; j < 1024; j++) {
            pte[j] = v2(WIN_PA + ((uint64_t)i << 22) + ((uint64_t)j << 12)) | 0x6 | 1;
        }
    }
}

static uint64_t core_base(unsigned c)
{
    return NPU_BASE + c * CORE_STRIDE;
}

static uint64_t bank_base(unsigned c, unsigned b)
{
    return core_base(c) + (c == 0 && b == 0 ? 0x9000 : 0xA000);
}

static unsigned nbanks(unsigned c)
{
    return c == 0 ? 2 : 1;
}

/* rk_iommu_enable() with the harness's tables */
static void iommu_enable(unsigned c)
{
    for (unsigned b = 0; b < nbanks(c); b++) {
        writel(bank_base(c, b) + 0x08, 6);                  /* FORCE_RESET */
        writel(bank_base(c, b) + 0x00, v2(PT_BASE) | 1);    /* DTE_ADDR */
        writel(bank_base(c, b) + 0x08, 4);                  /* ZAP_CACHE */
        writel(bank_base(c, b) + 0x1C, 3);                  /* INT_MASK */
        writel(bank_base(c, b) + 0x08, 0);                  /* ENABLE_PAGING */
    }
}

/* ---- the input ---- */

struct rd {
    const uint8_t *p;
    size_t n, pos;
};

static uint32_t get(struct rd *r, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint32_t)(r->pos < r->n ? r->p[r->pos] : 0) << (8 * i);
        r->pos++;
    }
    return v;
}

static bool more(const struct rd *r)
{
    return r->pos < r->n;
}

/* Registers the drivers and Mesa touch, for MMIO ops and regcmd overrides. */
static const uint16_t known_regs[] = {
#define RN_REG(blk, name, off, rst, acc) (off),
#define RN_FIELD(blk, reg, f, msb, lsb)
#include "rknpu-regs.def"
#undef RN_REG
#undef RN_FIELD
};
#define NKNOWN (sizeof(known_regs) / sizeof(known_regs[0]))

static uint64_t entry(uint32_t off, uint32_t value)
{
    static const uint16_t target[8] = { 0x0101, 0x0201, 0, 0x0801, 0x1001, 0x2001, 0x4001,
                                        0x8001 };
    uint32_t blk = (off >> 12) & 7;
    return (uint64_t)(target[blk] ? target[blk] : 0x0201) << 48 | (uint64_t)value << 16 |
           (off & 0xFFFF);
}

struct prog {
    uint64_t e[2048];
    unsigned n;
};

static void put(struct prog *p, uint32_t off, uint32_t v)
{
    if (p->n < 2040) {
        p->e[p->n++] = entry(off, v);
    }
}

static uint32_t cbuf_entries(uint32_t w, uint32_t c)
{
    uint32_t atoms = (c + 15) / 16;
    return atoms / 4 * w + (atoms % 4 == 3 ? w : (w * (atoms % 4) + 3) / 4);
}

/*
 * A conv task of the plain configuration (sim-tests/tinyjob.py, test_attacks.py conv_regs):
 * shape from the input, then register overrides; the CBUF programmed as Mesa grants it unless an
 * override says otherwise.
 */
static void conv_template(struct rd *r, struct prog *p, uint32_t addr_off)
{
    uint32_t w = 1 + get(r, 1) % 64, h = 1 + get(r, 1) % 64;
    uint32_t c = 1 + get(r, 1), k = 1 + get(r, 1);
    uint32_t ks = get(r, 1), kh = 1 + ks % 5, kw = 1 + (ks >> 3) % 5;
    bool dw = (ks >> 6) & 1;
    uint32_t wo = w >= kw ? w - kw + 1 : 1, ho = h >= kh ? h - kh + 1 : 1;
    uint32_t surf = wo * ho * 16, entries = cbuf_entries(w, c);
    uint32_t banks = (entries * h + 511) / 512;
    banks = banks < 1 ? 1 : banks > 11 ? 11 : banks;
    if (dw) {
        k = c;
    }
    put(p, RN_DPU_S_POINTER, 0xE);
    put(p, RN_CNA_CONV_CON3, 1 | 1 << 3);
    put(p, RN_CNA_CONV_CON1, dw ? 3 : 0);
    put(p, RN_CNA_DATA_SIZE0, w << 16 | h);
    put(p, RN_CNA_DATA_SIZE1, (c - 1) << 16 | c);
    put(p, RN_CNA_WEIGHT_SIZE0, k * c * kh * kw);
    put(p, RN_CNA_WEIGHT_SIZE1, c * kh * kw);
    put(p, RN_CNA_WEIGHT_SIZE2, kw << 24 | kh << 16 | (dw ? 1 : k));
    put(p, RN_CNA_CVT_CON0, 0xB);
    put(p, RN_CNA_FEATURE_DATA_ADDR, IN_IOVA + addr_off);
    put(p, RN_CNA_DMA_CON1, 4 * w);
    put(p, RN_CNA_DMA_CON2, (w * (h > 4 ? h - 4 : 0)) & 0x0FFFFFFF);
    put(p, RN_CNA_DCOMP_ADDR0, WT_IOVA + addr_off);
    put(p, RN_CNA_CBUF_CON0, banks | (12 - banks) << 4);
    put(p, RN_CNA_CBUF_CON1, entries);
    put(p, RN_CORE_MISC_CFG, dw ? 3 : 1);
    put(p, RN_CORE_DATAOUT_SIZE_0, (ho - 1) << 16 | (wo - 1));
    put(p, RN_DPU_FEATURE_MODE_CFG, 0x1E4);
    put(p, RN_DPU_DST_BASE_ADDR, OUT_IOVA + addr_off);
    put(p, RN_DPU_DST_SURF_STRIDE, surf);
    put(p, RN_DPU_DATA_CUBE_WIDTH, wo - 1);
    put(p, RN_DPU_DATA_CUBE_HEIGHT, ho - 1);
    put(p, RN_DPU_DATA_CUBE_CHANNEL, (k - 1) << 16 | (k - 1));
    put(p, RN_DPU_BS_CFG, 0x20150);
    put(p, RN_DPU_BS_OW_CFG, dw ? 0x36C : 0x124);   /* SIZE_E 3 for depthwise */
    put(p, RN_DPU_BS_OW_OP, 0xFFFD);
    put(p, RN_DPU_BN_CFG, 0x53);
    put(p, RN_DPU_EW_CFG, 0x383);
    put(p, RN_DPU_OUT_CVT_SCALE, 0x5A3C);
    put(p, RN_DPU_OUT_CVT_SHIFT, 21);
    put(p, RN_DPU_OUT_CVT_OFFSET, 3);
    put(p, RN_DPU_SURFACE_ADD, (dw ? 4 : 2) * surf);
    put(p, RN_DPU_RDMA_BRDMA_CFG, 2);
    put(p, RN_DPU_RDMA_BS_BASE_ADDR, BIAS_IOVA + addr_off);
    put(p, RN_DPU_RDMA_FEATURE_MODE_CFG, 0x7810);
}

/* OP_REGCMD: slot, flags, [template], overrides, link, op_en */
static void op_regcmd(struct rd *r)
{
    struct prog p = { .n = 0 };
    uint32_t slot = get(r, 1) % NSLOTS, flags = get(r, 1);
    bool phys = flags & 1, tmpl = !(flags & 2), link = flags & 4, raw = flags & 8;
    uint32_t addr_off = phys ? (uint32_t)WIN_PA : 0;
    uint32_t nover = get(r, 1) % 24;
    if (tmpl) {
        conv_template(r, &p, addr_off);
    }
    for (uint32_t i = 0; i < nover && more(r); i++) {
        uint32_t sel = get(r, 1), v = get(r, 4);
        if (raw && (sel & 0x80)) {           /* an entry as it comes: any target, any offset */
            uint64_t e = (uint64_t)get(r, 2) << 48 | (uint64_t)v << 16 | get(r, 2);
            if (p.n < 2040) {
                p.e[p.n++] = e;
            }
        } else {
            put(&p, known_regs[sel % NKNOWN], v);
        }
    }
    uint32_t next = (slot + 1) % NSLOTS;
    uint32_t amount_words = p.n + 4 + 1;
    uint32_t amount = (amount_words + 1) / 2 - 1;   /* tasks' PC_REGISTER_AMOUNTS */
    if (link) {   /* chain to the next slot: TASK_NUMBER > 1 runs it */
        put(&p, RN_PC_BASE_ADDRESS, next * SLOT_SIZE + addr_off);
        put(&p, RN_PC_REGISTER_AMOUNTS, amount + (flags >> 4));
    }
    p.e[p.n++] = 0x0041ull << 48;
    p.e[p.n++] = 0x0081ull << 48 | (uint64_t)(get(r, 1) ? get(r, 1) : 0x1D) << 16 | 0x0008;
    while (p.n % 2) {
        p.e[p.n++] = 0;
    }
    uint8_t buf[sizeof(p.e)];
    for (unsigned i = 0; i < p.n; i++) {
        for (int b = 0; b < 8; b++) {
            buf[8 * i + b] = (uint8_t)(p.e[i] >> (8 * b));
        }
    }
    memwrite(WIN_PA + slot * SLOT_SIZE, buf, 8 * p.n);
}

static uint64_t rng_state;

static uint8_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint8_t)(rng_state >> 56);
}

/* OP_DATA: region, size, seed: pseudo-random bytes (or a constant) into the work area */
static void op_data(struct rd *r)
{
    static const uint32_t base[4] = { IN_IOVA, WT_IOVA, BIAS_IOVA, OUT_IOVA };
    static uint8_t buf[1 << 18];
    uint32_t sel = get(r, 1), len = 1 + get(r, 2) * 4, seed = get(r, 1);
    uint32_t at = base[sel & 3] + ((sel >> 2) << 8);
    if (len > sizeof(buf)) {
        len = sizeof(buf);
    }
    if (at + len > WIN_SIZE) {
        len = WIN_SIZE - at;
    }
    rng_state = seed;
    for (uint32_t i = 0; i < len; i++) {
        buf[i] = seed & 1 ? rnd() : (uint8_t)seed;
    }
    memwrite(WIN_PA + at, buf, len);
}

static void kick(unsigned c, uint32_t base, uint32_t amount, uint32_t task_con)
{
    uint64_t b = core_base(c);
    Q.kicked[c] = true;
    writel(b + 0x10, 1);
    writel(b + RN_CNA_S_POINTER, 0xE | c << 28);
    writel(b + RN_CORE_S_POINTER, 0xE | c << 28);
    writel(b + 0x10, base);
    writel(b + 0x14, amount);
    writel(b + 0x20, 0x300);
    writel(b + 0x24, 0x300);
    writel(b + 0x30, task_con);
    writel(b + 0x34, 0);
    writel(b + 0x08, 1);
}

/* OP_KICK: core, slot, amount, task count, flags */
static void op_kick(struct rd *r)
{
    unsigned c = get(r, 1) % CORES;
    uint32_t slot = get(r, 1), amount = get(r, 2), ntask = get(r, 1), flags = get(r, 1);
    uint32_t base = (slot % NSLOTS) * SLOT_SIZE + (flags & 1 ? (uint32_t)WIN_PA : 0);
    if (flags & 2) {
        base = get(r, 4);      /* any address */
    }
    amount = flags & 4 ? amount : amount % 256;
    kick(c, base, amount, 0x6000 | (flags & 8 ? 0x1000 : 0) | (ntask % 17));
}

static void irq_done(unsigned c)
{
    uint64_t b = core_base(c);
    Q.kicked[c] = false;
    readl(b + 0x2C);
    writel(b + 0x20, 0);
    writel(b + 0x08, 0);
    writel(b + 0x24, 0x1FFFF);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* OP_BLOB: bytes of the input as they come, at an IOVA of the window (regcmds and data of any
 * form: make-fuzz-seeds.py turns the core fuzzer's memory images into these) */
static void op_blob(struct rd *r)
{
    uint32_t at = get(r, 3) % WIN_SIZE, len = get(r, 2);
    if (len > r->n - (r->pos < r->n ? r->pos : r->n)) {
        len = (uint32_t)(r->n - (r->pos < r->n ? r->pos : r->n));
    }
    if (at + len > WIN_SIZE) {
        len = WIN_SIZE - at;
    }
    memwrite(WIN_PA + at, r->p + r->pos, len);
    r->pos += len;
}

/* OP_SETTLE: step virtual time until a kicked core c interrupts (or a real-time budget runs out:
 * a kick may fault, hang as modelled, or have its interrupt masked) */
static void settle(unsigned c, double budget)
{
    double end = now_s() + budget;
    while (Q.kicked[c] && !irq(SPI_BASE + c) && now_s() < end) {
        clock_step(5000000);
        usleep(50);
    }
}

/* OP_MAP: rewrite one PTE of the window (or a DT entry) */
static void op_map(struct rd *r)
{
    uint32_t page = get(r, 2) % (WIN_SIZE >> 12), kind = get(r, 1), v = get(r, 4);
    uint64_t pte_at = PT_BASE + 0x1000 * (1 + (page >> 10)) + 4 * (page & 0x3FF);
    uint64_t pa;
    switch (kind % 8) {
    case 0: pa = WIN_PA + ((uint64_t)(v % (WIN_SIZE >> 12)) << 12); break;   /* aliasing */
    case 1: pa = NPU_BASE + (v & 0x3F000); break;                            /* NPU MMIO */
    case 2: pa = RAM_BASE + (64ull << 20) + ((uint64_t)v << 12);  break;     /* past RAM */
    case 3: pa = (uint64_t)v << 8;  break;                                   /* 40-bit */
    case 4: pa = PT_BASE; break;                                             /* the tables */
    case 5: writel(pte_at, v); return;                                       /* raw */
    case 6: writel(PT_BASE + 4 * ((page >> 10) % 1024), v); return;          /* raw DTE */
    default: writel(pte_at, 0); return;                                      /* unmapped */
    }
    writel(pte_at, v2(pa) | ((kind >> 3) & 6) | 1);
}

/* OP_IOMMU: a write to one IOMMU register (commands, DTE, masks, zap, clear) */
static void op_iommu(struct rd *r)
{
    unsigned c = get(r, 1) % CORES, b = get(r, 1) % nbanks(c), reg = get(r, 1) % 11;
    uint32_t v = get(r, 4);
    if (reg == 10) {
        readl(bank_base(c, b) + 4 * (v % 11));
        return;
    }
    if (reg == 2) {
        v %= 8;
    }
    writel(bank_base(c, b) + 4 * reg, v);
}

/* OP_MMIO: any core register by index, or any offset and size of the NPU's 256 KiB */
static void op_mmio(struct rd *r)
{
    static const char *const wr[4] = { "writeb", "writew", "writel", "writeq" };
    static const char *const rdn[4] = { "readb", "readw", "readl", "readq" };
    unsigned c = get(r, 1), sel = get(r, 1);
    uint32_t v = get(r, 4);
    if (sel < 0xF0) {
        uint64_t a = core_base(c % CORES) + known_regs[sel % NKNOWN];
        if (c & 0x80) {
            readl(a);
        } else {
            writel(a, v);
        }
    } else {
        uint64_t a = NPU_BASE + (get(r, 3) % 0x40000);
        unsigned size = sel & 3;
        if (sel & 4) {
            qt("%s 0x%llx", rdn[size], (unsigned long long)a);
        } else {
            qt("%s 0x%llx 0x%x", wr[size], (unsigned long long)a, v);
        }
    }
}

enum {
    OP_MMIO, OP_IOMMU_ENABLE, OP_IOMMU, OP_RESET, OP_REGCMD, OP_DATA, OP_KICK, OP_SETTLE,
    OP_IRQ_DONE, OP_CLOCK, OP_MAP, OP_STOP_CONT, OP_MIGRATE, OP_SYSTEM_RESET, OP_KICK_SETTLE,
    OP_BLOB, OP_COUNT
};

static void new_input(void)
{
    memset(Q.kicked, 0, sizeof(Q.kicked));
    if (!qmp("system_reset", "\"RESET\"")) {
        die("system_reset refused");
    }
    qt("memset 0x%llx 0x%x 0", (unsigned long long)WIN_PA, WIN_SIZE);
    memwrite(PT_BASE, tables, sizeof(tables));
    qt("memset 0x%llx 0x%x 0", (unsigned long long)PT_SPARE, 0x8000);
    for (unsigned c = 0; c < CORES; c++) {
        iommu_enable(c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = { data, size, 0 };
    if (!Q.pid) {
        build_tables();
        start_qemu();
        atexit(at_exit);
    }
    new_input();
    cov_clear();
    for (int n = 0; n < MAX_OPS && more(&r); n++) {
        unsigned op = get(&r, 1) % OP_COUNT, c;
        switch (op) {
        case OP_MMIO:
            op_mmio(&r);
            break;
        case OP_IOMMU_ENABLE:
            iommu_enable(get(&r, 1) % CORES);
            break;
        case OP_IOMMU:
            op_iommu(&r);
            break;
        case OP_RESET: {
            uint32_t v = get(&r, 1);
            writel(RESET_REG, v & 0x3F);
            if (!(v & 0x80)) {
                writel(RESET_REG, 0);
            }
            break;
        }
        case OP_REGCMD:
            op_regcmd(&r);
            break;
        case OP_DATA:
            op_data(&r);
            break;
        case OP_KICK:
            op_kick(&r);
            break;
        case OP_SETTLE:
            settle(get(&r, 1) % CORES, 0.1);
            break;
        case OP_IRQ_DONE:
            irq_done(get(&r, 1) % CORES);
            break;
        case OP_CLOCK:
            clock_step(1 + (uint64_t)get(&r, 3) * 64);
            break;
        case OP_MAP:
            op_map(&r);
            break;
        case OP_STOP_CONT:
            c = get(&r, 1);
            qmp("stop", NULL);
            if (c & 1) {
                clock_step(1000000);
            }
            qmp("cont", NULL);
            break;
        case OP_MIGRATE:
            /* pre_save with kicks in flight; the source stays paused after it, cont resumes */
            if (qmp("{\"execute\": \"migrate\", \"arguments\": {\"uri\": "
                    "\"exec:cat >/dev/null\"}}", NULL)) {
                double end = now_s() + QTEST_TIMEOUT_S;
                const char *a;
                while ((a = qmp("query-migrate", NULL)) && !strstr(a, "\"completed\"") &&
                       !strstr(a, "\"failed\"")) {
                    if (now_s() > end) {
                        die("migration did not finish in %d s", QTEST_TIMEOUT_S);
                    }
                    usleep(1000);
                }
            }
            qmp("cont", NULL);
            break;
        case OP_SYSTEM_RESET:
            if (!qmp("system_reset", "\"RESET\"")) {
                die("system_reset refused");
            }
            memset(Q.kicked, 0, sizeof(Q.kicked));
            break;
        case OP_BLOB:
            op_blob(&r);
            break;
        case OP_KICK_SETTLE:   /* the common path in one op: kick a slot, wait, acknowledge */
            c = get(&r, 1) % CORES;
            kick(c, (get(&r, 1) % NSLOTS) * SLOT_SIZE, 1 + get(&r, 1), 0x6001 + get(&r, 1) % 4);
            settle(c, 0.1);
            irq_done(c);
            break;
        }
    }
    for (unsigned c = 0; c < CORES; c++) {   /* what is left completes or is abandoned */
        clock_step(1000000);
        readl(core_base(c) + 0x2C);
    }
    if (!qt("endianness")) {
        die("QEMU does not answer qtest after the input");
    }
    cov_collect();
    runs++;
    if (!(runs & (runs - 1)) && runs >= 1024) {
        report();
    }
    return 0;
}
