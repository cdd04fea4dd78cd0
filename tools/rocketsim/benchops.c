// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim bench, past Mesa's int8 convolutions: a matmul of each other CNA/CORE precision
 * (HARDWARE-UNKNOWNS Q19; fp16 in GFLOP/s, the others in GMAC/s), and elements a second through
 * the LUT (a sigmoid) and an EW add, both DPU-only tasks (Q18), and a PPU max pool (Q16). Each is
 * one task as the public rocket userspaces program it (qemu-hw/tools/progs.h), on random data of
 * a fixed seed, timed like the layers (rknpu-run --threads 1 --repeat, wall clock). Also the job
 * folders and timing that bench.c shares.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "progs.h"
#include "rocketsim.h"

uint64_t rs_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rs_rm_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *sub = g_build_filename(path, name, NULL);
        if (g_file_test(sub, G_FILE_TEST_IS_DIR) && !g_file_test(sub, G_FILE_TEST_IS_SYMLINK)) {
            rs_rm_tree(sub);
        } else {
            g_unlink(sub);
        }
    }
    if (d) {
        g_dir_close(d);
    }
    g_rmdir(path);
}

/* host threads per task for every timing (rocketsim bench --threads; 1: the core-bench figure) */
int rs_bench_threads = 1;

/* rknpu-run's last line: "rknpu-run: N runs, M MACs in S s: G GMAC/s" */
static gboolean repeat_run(const char *run, const char *dir, int64_t reps, double *macs,
                           double *secs)
{
    g_autofree char *n = g_strdup_printf("%" G_GINT64_FORMAT, reps);
    g_autofree char *t = g_strdup_printf("%d", rs_bench_threads);
    const char *argv[] = { run, "-q", "--threads", t, "--repeat", n, dir, NULL };
    g_autofree char *out = NULL, *err = NULL;
    rs_run_capture(argv, &out, &err);
    const char *p = out ? strstr(out, " MACs in ") : NULL;
    while (p && p > out && g_ascii_isdigit(p[-1])) {
        p--;
    }
    return p && sscanf(p, "%lf MACs in %lf s", macs, secs) == 2;
}

/*
 * The time in three runs of a third of the seconds each, the fastest kept: on a shared host the
 * others' load only ever slows a run, so the best of three is the steadiest figure.
 */
gboolean rs_bench_time(const char *run, const char *dir, double seconds, double *macs,
                       double *secs)
{
    double m, s;
    if (!repeat_run(run, dir, 2, &m, &s)) {
        return FALSE;
    }
    int64_t reps = MAX(2, (int64_t)(seconds / 3 / MAX(s / 2, 1e-5)));
    *secs = -1;
    for (int i = 0; i < 3; i++) {
        if (!repeat_run(run, dir, reps, &m, &s)) {
            return FALSE;
        }
        if (*secs < 0 || s / (double)reps < *secs) {
            *macs = m / (double)reps;
            *secs = s / (double)reps;
        }
    }
    return TRUE;
}

static gint by_iova(gconstpointer a, gconstpointer b)
{
    const struct rs_seg *x = a, *y = b;
    return x->iova < y->iova ? -1 : x->iova > y->iova;
}

gboolean rs_job_write(const char *dir, struct rs_seg *segs, int nseg, const struct rs_kick *kicks,
                      int nkick, int64_t dump_iova, int64_t dump_size, GError **err)
{
    GString *txt = g_string_new("rknpu-job 1\n");
    gboolean ok = TRUE;
    qsort(segs, (size_t)nseg, sizeof(segs[0]), by_iova);
    for (int j = 0; j < nseg; j++) {
        /* a BO is whole pages: pad every segment to the next one's IOVA, the last to a page */
        int64_t end = j + 1 < nseg ? segs[j + 1].iova
                                   : segs[j].iova + ((MAX(segs[j].data->len, 1u) + 4095) & ~4095u);
        guint old = segs[j].data->len;
        if ((int64_t)old < end - segs[j].iova) {
            g_byte_array_set_size(segs[j].data, (guint)(end - segs[j].iova));
            memset(segs[j].data->data + old, 0, segs[j].data->len - old);
        }
        g_autofree char *name = g_strdup_printf("seg%d.bin", j);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        ok = ok && g_file_set_contents(path, (char *)segs[j].data->data,
                                       (gssize)segs[j].data->len, err);
        g_string_append_printf(txt, "mem 0x%08" G_GINT64_MODIFIER "x 0x%x %s\n", segs[j].iova,
                               MAX(segs[j].data->len, 1u), name);
    }
    for (int i = 0; i < nkick; i++) {
        g_string_append_printf(txt, "kick 0x%08" G_GINT64_MODIFIER "x %u 0x7001\n",
                               kicks[i].regcmd, kicks[i].amount);
    }
    g_string_append_printf(txt, "dump 0x%08" G_GINT64_MODIFIER "x 0x%" G_GINT64_MODIFIER
                           "x out.bin\n", dump_iova, dump_size);
    g_autofree char *job = g_build_filename(dir, "job.txt", NULL);
    ok = ok && g_file_set_contents(job, txt->str, (gssize)txt->len, err);
    g_string_free(txt, TRUE);
    for (int j = 0; j < nseg; j++) {
        g_byte_array_unref(segs[j].data);
    }
    return ok;
}

/* ---- the jobs ---- */

/* Segments from IOVA 0 up, page-aligned as rocket lays out BOs. */
struct lay {
    struct rs_seg seg[4];
    int n;
    int64_t next;
};

static int64_t take(struct lay *l, GByteArray *data)
{
    int64_t at = l->next;
    l->seg[l->n++] = (struct rs_seg){ at, data };
    l->next += ((int64_t)MAX(data->len, 1u) + 4095) & ~(int64_t)4095;
    return at;
}

/* n random elements of `bits` bits: raw(seed) makes each (a float's bits, or a nibble) */
static GByteArray *elements(size_t n, uint32_t bits, uint32_t (*raw)(uint64_t *), uint64_t *seed)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_set_size(b, (guint)((n * bits + 7) / 8));
    memset(b->data, 0, b->len);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = raw(seed);
        if (bits == 4) {
            b->data[i / 2] |= (guint8)((v & 0xF) << (4 * (i & 1)));
        }
        for (uint32_t j = 0; bits >= 8 && j < bits / 8; j++) {
            b->data[i * (bits / 8) + j] = (guint8)(v >> (8 * j));
        }
    }
    return b;
}

/* Values of magnitude 2^-3 .. 2^2, random sign and mantissa: what a layer's tensors hold. */
static uint32_t fp16_raw(uint64_t *s)
{
    uint64_t r = rs_splitmix(s);
    return (uint32_t)((r >> 63) << 15 | (12 + r % 5) << 10 | ((r >> 8) & 0x3FF));
}

static uint32_t bf16_raw(uint64_t *s)
{
    uint64_t r = rs_splitmix(s);
    return (uint32_t)((r >> 63) << 15 | (124 + r % 5) << 7 | ((r >> 8) & 0x7F));
}

static uint32_t fp32_raw(uint64_t *s)   /* tf32: the MAC rounds the low 13 bits away */
{
    uint64_t r = rs_splitmix(s);
    return (uint32_t)((r >> 63) << 31 | (124 + r % 5) << 23 | ((r >> 8) & 0x7FFFFF));
}

static uint32_t int16_raw(uint64_t *s)   /* 12 bits: 512 products stay inside int32 */
{
    return (uint32_t)((int32_t)(rs_splitmix(s) & 0xFFF) - 0x800) & 0xFFFF;
}

static uint32_t int4_raw(uint64_t *s)
{
    return (uint32_t)rs_splitmix(s) & 0xF;
}

static GByteArray *zeros(size_t n)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_set_size(b, (guint)n);
    memset(b->data, 0, n);
    return b;
}

/* The regcmd of one task at `at` (the first segment, so the rest follow it). */
static GByteArray *regcmd(const struct rp_prog *p, uint32_t op_en, uint32_t *amount)
{
    g_autofree uint64_t *e = g_new(uint64_t, p->n + 3);
    unsigned n = rp_regcmd(p, op_en, e);
    GByteArray *b = g_byte_array_new();
    for (unsigned i = 0; i < n; i++) {
        for (int j = 0; j < 8; j++) {
            guint8 byte = (guint8)(e[i] >> (8 * j));
            g_byte_array_append(b, &byte, 1);
        }
    }
    *amount = n / 2 - 1;
    return b;
}

/* One task's job: its program first (IOVA 0), the data after; dump the output. */
static gboolean write_task(const char *dir, struct lay *l, const struct rp_prog *p,
                           uint32_t op_en, int64_t out, int64_t out_size, GError **err)
{
    uint32_t amount;
    struct rs_kick k = { 0, 0 };
    l->seg[0] = (struct rs_seg){ 0, regcmd(p, op_en, &amount) };
    k.amount = amount;
    return rs_job_write(dir, l->seg, l->n, &k, 1, out, out_size, err);
}

struct mm {
    const char *name;
    uint32_t prec, m, k, n;
    uint32_t (*raw)(uint64_t *);
};

static const struct mm matmuls[] = {
    { "fp16", 2, 256, 512, 128, fp16_raw },
    { "bf16", 3, 256, 512, 128, bf16_raw },
    { "tf32", 7, 128, 512, 128, fp32_raw },   /* 4-byte rows: half the rows fit the CBUF */
    { "int16", 1, 256, 512, 128, int16_raw },
    { "int4", 6, 256, 512, 128, int4_raw },
};

/* C[m][n] = A[m][k] · B[n][k]^T: one 1x1 conv over m row-major rows (GROUP_LINE_OFF). */
static gboolean job_matmul(const struct mm *mm, const char *dir, GError **err)
{
    struct lay l = { .n = 1, .next = 0x10000 };   /* the regcmd's page(s) first */
    struct rp_prog *p = g_new0(struct rp_prog, 1);
    struct rp_conv c = { .prec = mm->prec, .w = 1, .h = mm->m, .c = mm->k, .k = mm->n, .kh = 1,
                         .kw = 1, .stride = 1, .row_major = TRUE };
    uint32_t bits = rp_prec_of(mm->prec).bits;
    uint64_t seed = 7;
    c.src = (uint32_t)take(&l, elements((size_t)mm->m * mm->k, bits, mm->raw, &seed));
    c.wt = (uint32_t)take(&l, elements((size_t)mm->n * mm->k, bits, mm->raw, &seed));
    c.dst = (uint32_t)take(&l, zeros(rp_conv_out_bytes(&c)));
    rp_conv_regs(&c, p);
    gboolean ok = write_task(dir, &l, p, 0x0D, c.dst, (int64_t)rp_conv_out_bytes(&c), err);
    g_free(p);
    return ok;
}

#define EL_W 64   /* the LUT, EW and PPU tensors: 64 x 64 x 64 fp16 */

/* The sigmoid tables of GN's program: Q15 samples 32/2596 apart, LE below 0, LO above. */
static void sigmoid_tables(int16_t *le, int16_t *lo)
{
    for (int i = 0; i < 513; i++) {
        double a = 32768 / (1 + exp((512 - i) * 32.0 / 2596));
        double b = 32768 / (1 + exp(-i * 32.0 / 2596));
        le[i] = (int16_t)MIN(nearbyint(a), 32767);
        lo[i] = (int16_t)MIN(nearbyint(b), 32767);
    }
}

/* A DPU-only fp16 task: the LUT sigmoid, or an EW add with a second tensor. */
static gboolean job_flying(gboolean lut, const char *dir, GError **err)
{
    struct lay l = { .n = 1, .next = 0x10000 };
    struct rp_prog *p = g_new0(struct rp_prog, 1);
    struct rp_flying f = { .prec = 2, .out = 2, .w = EL_W, .h = EL_W, .c = EL_W,
                           .ew_cfg = lut ? 0x300 : rp_ew_cfg(0, 2, 2), .ew_size = lut ? 0 : 2 };
    size_t n = (size_t)EL_W * EL_W * EL_W, bytes = n * 2;   /* 8 channels an atom: dense */
    uint64_t seed = 11;
    f.src = (uint32_t)take(&l, elements(n, 16, fp16_raw, &seed));
    f.operand = lut ? 0 : (uint32_t)take(&l, elements(n, 16, fp16_raw, &seed));
    f.dst = (uint32_t)take(&l, zeros(bytes));
    rp_flying_regs(&f, p);
    if (lut) {
        int16_t le[513], lo[513];
        sigmoid_tables(le, lo);
        rp_lut_sigmoid(le, lo, p);
    }
    gboolean ok = write_task(dir, &l, p, 0x18, f.dst, (int64_t)bytes, err);
    g_free(p);
    return ok;
}

/* A PPU fp16 max pool, 3x3 stride 2 (stride 1 over a wide input hangs, quirk ppu-width-hang). */
static gboolean job_pool(const char *dir, GError **err)
{
    struct lay l = { .n = 1, .next = 0x10000 };
    struct rp_prog *p = g_new0(struct rp_prog, 1);
    struct rp_pool q = { .w = EL_W, .h = EL_W, .c = EL_W, .ow = (EL_W - 3) / 2 + 1,
                         .oh = (EL_W - 3) / 2 + 1, .kw = 3, .kh = 3, .sx = 2, .sy = 2,
                         .method = 1, .prec = 2, .width = 2, .pad = 0xFC00 /* -inf */,
                         .s_pointer = 0xE };
    size_t n = (size_t)EL_W * EL_W * EL_W, out = (size_t)EL_W / 8 * q.ow * q.oh * 16;
    uint64_t seed = 13;
    q.src = (uint32_t)take(&l, elements(n, 16, fp16_raw, &seed));
    q.dst = (uint32_t)take(&l, zeros(out));
    rp_pool_regs(&q, p);
    gboolean ok = write_task(dir, &l, p, 0x60, q.dst, (int64_t)out, err);
    g_free(p);
    return ok;
}

/* "cpu: NAME" and "kernels: PATH ..." of test-kernels --info, as "NAME, PATH kernels" */
static char *where_of(const char *info)
{
    g_auto(GStrv) lines = g_strsplit(info ? info : "", "\n", -1);
    const char *cpu = "unknown CPU", *isa = "unknown";
    g_autofree char *path = NULL;
    for (int i = 0; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "cpu: ")) {
            cpu = lines[i] + 5;
        } else if (g_str_has_prefix(lines[i], "kernels: ")) {
            isa = lines[i] + 9;
        }
    }
    path = g_strndup(isa, strcspn(isa, " "));
    return g_strdup_printf("%s, %s", cpu, path);
}

struct op {
    const char *name;
    int kind;   /* 0 a matmul (mm), 1 LUT, 2 EW, 3 PPU */
    const struct mm *mm;
};

void rs_bench_ops(const char *run, const char *top, double seconds, const char *info)
{
    g_autofree char *where = where_of(info);
    g_autoptr(GError) err = NULL;
    double elements = (double)EL_W * EL_W * EL_W;
    struct op ops[G_N_ELEMENTS(matmuls) + 3];
    size_t nops = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(matmuls); i++) {
        ops[nops++] = (struct op){ matmuls[i].name, 0, &matmuls[i] };
    }
    ops[nops++] = (struct op){ "lut-sigmoid", 1, NULL };
    ops[nops++] = (struct op){ "ew-add", 2, NULL };
    ops[nops++] = (struct op){ "ppu-maxpool", 3, NULL };
    for (size_t i = 0; i < nops; i++) {
        const struct mm *mm = ops[i].mm;
        g_autofree char *name = mm ? g_strdup_printf("matmul-%s", mm->name)
                                   : g_strdup(ops[i].name);
        g_autofree char *d = g_build_filename(top, name, NULL);
        double macs, secs;
        gboolean ok;
        if (g_mkdir_with_parents(d, 0755)) {
            rs_fail(1, "cannot create %s", d);
        }
        ok = ops[i].kind == 0 ? job_matmul(mm, d, &err)
           : ops[i].kind == 3 ? job_pool(d, &err) : job_flying(ops[i].kind == 1, d, &err);
        if (!ok) {
            rs_fail(1, "cannot write the job %s: %s", name, err->message);
        }
        if (!run) {   /* --write-jobs */
            printf("%s: %s\n", name, d);
            continue;
        }
        if (!rs_bench_time(run, d, seconds, &macs, &secs)) {
            rs_fail(1, "rknpu-run gave no timing for %s (%s)", name, d);
        }
        if (mm && mm->prec == 2) {
            printf("fp16 matmul %ux%ux%u (M x K x N, one task): %.2f GFLOP/s (%.2f GMAC/s) "
                   "[%s]\n", mm->m, mm->k, mm->n, 2 * macs / secs * 1e-9, macs / secs * 1e-9,
                   where);
        } else if (mm) {
            printf("%s matmul %ux%ux%u: %.2f GMAC/s [%s]\n", mm->name, mm->m, mm->k, mm->n,
                   macs / secs * 1e-9, where);
        } else {
            printf("%s fp16 %dx%dx%d: %.1f Melem/s [%s; %s]\n", ops[i].name,
                   EL_W, EL_W, EL_W, elements / secs * 1e-6, where,
                   ops[i].kind == 1 ? "the LUT: plain C rows, results memoised by input value"
                   : ops[i].kind == 2 ? "the EW: plain C rows, compiler-vectorised"
                   : "the PPU: plain C lane loops, compiler-vectorised");
        }
        fflush(stdout);
        rs_rm_tree(d);
    }
}
