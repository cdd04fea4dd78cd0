/*
 * rknpu-diff: replay captured NPU jobs (a board's or the emulator's, userspace/rocket-capture.c)
 * on the core model and compare, task by task, what the model writes with what the NPU wrote
 * (expected-*.bin, JOB-FORMAT.md "captures").
 *
 * Every byte of the captured output BOs is attributed to the task that last wrote it in the
 * replay (or, where the model wrote nothing, to the task whose output surfaces hold it). Per
 * task: identical, or how many of its bytes differ and the first one as (channel, y, x) of the
 * task's output cube, the task's regcmd disassembly (as rknpu-dis prints it), the modelled
 * hardware rules (HARDWARE-UNKNOWNS.md Qn) and quirks (Q15) the task exercised, and whether it
 * read bytes an earlier task of the replay had already got wrong (a consequence, not a cause).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dis.h"
#include "hwchoices.h"
#include "job.h"
#include "quirks.h"

#define R(c, name) ((c)->regs[(RN_##name) / 4])
#define F(v, blk, reg, f) RN_FX(v, blk, reg, f)

/* The modelled rules a task can exercise, beyond the plain conv/depthwise arithmetic. */
static const char *const rule_names[] = {
    "Q1 chained-task",        /* a task after the first of a kick */
    "Q3 weight-reuse",
    "Q4 dense-input",
    "Q5 partial-weight-group",
    "Q6 input-cvt",
    "Q7 clip-truncate",
    "Q8 cpend",
    "Q9 bias-from-memory",
    "Q9 ew-operand",
    "Q10 out-int16",
    "Q10 out-int32",
    "Q10 out-fp32",
    "Q10 raw-accumulator",
    "Q10 cvt-round-away",
    "Q11 offset-pend-channels",
    "Q11 surface-add",
    "Q12 bias-overread",
    "Q13 pad-lanes",
    "Q14 refused",
};
enum {
    RULE_CHAINED, RULE_WEIGHT_REUSE, RULE_DENSE, RULE_WGROUP, RULE_CVT, RULE_TRUNC, RULE_CPEND,
    RULE_BIAS, RULE_EW, RULE_INT16, RULE_INT32, RULE_FP32, RULE_RAW, RULE_ROUND_AWAY,
    RULE_PAD_CHANNELS, RULE_SURF_ADD, RULE_BIAS_OVERREAD, RULE_PAD_LANES, RULE_REFUSED,
    RULE_COUNT
};

/* Where a task's output surfaces are (Q11), as its registers say. */
struct geom {
    int valid;
    uint32_t base, wo, ho, co, c2, nsurf, out_bytes, group_bytes, surf_add, surf_stride;
};

struct task {
    size_t kick;
    uint32_t in_kick, regcmd, amount;
    struct rn_task_stats st;
    struct geom g;
    uint32_t rules;
    uint64_t written;          /* bytes of the captured outputs this task wrote last */
    uint64_t differ;           /* of those, bytes that differ from the board's */
    uint64_t missed;           /* differing bytes in its surfaces that no task of the model wrote */
    int have_first;
    uint32_t first;            /* address of its first differing byte */
    uint8_t first_board, first_model;
    uint64_t tainted;          /* bytes it read that an earlier task had written differently */
    size_t taint_from;         /* the first such earlier task */
};

/* One captured output region: a dump line of job.txt and the board's bytes for it. */
struct watch {
    uint32_t iova, size;
    uint8_t *expect;
    uint8_t *model;            /* what the model wrote last (memory holds the board's bytes
                                  there under --isolate) */
    uint32_t *writer;          /* task index + 1 of the model's last write; 0: none */
    const char *name;
};

struct ctx {
    struct job job;
    struct rn_core core;
    struct rn_mem inner;
    struct watch *w;
    size_t nw;
    struct task *t;
    size_t nt, cap;
    size_t kick;
    uint32_t in_kick, next_amount;
    uint64_t unattributed;
    int verbose, isolate;
};

struct summary {
    size_t jobs, bad_jobs, tasks, identical, differ, consequence, unchecked;
};

static int oom(void)
{
    fprintf(stderr, "rknpu-diff: out of memory\n");
    exit(2);
}

/* ---- DMA through the model, watched ---- */

static void overlap(const struct watch *w, uint32_t iova, size_t len, uint64_t *lo, uint64_t *hi)
{
    uint64_t a = iova, b = (uint64_t)iova + len;
    *lo = a > w->iova ? a : w->iova;
    *hi = b < (uint64_t)w->iova + w->size ? b : (uint64_t)w->iova + w->size;
}

static int w_read(void *opaque, uint32_t iova, void *buf, size_t len)
{
    struct ctx *x = opaque;
    int rc = x->inner.read(x->inner.opaque, iova, buf, len);
    if (rc || x->nt >= x->cap) {
        return rc;
    }
    for (size_t i = 0; i < x->nw; i++) {
        const struct watch *w = &x->w[i];
        uint64_t lo, hi;
        overlap(w, iova, len, &lo, &hi);
        for (uint64_t a = lo; w->expect && a < hi; a++) {
            uint32_t by = w->writer[a - w->iova];
            if (by && by - 1 != x->nt &&
                ((const uint8_t *)buf)[a - iova] != w->expect[a - w->iova]) {
                if (!x->t[x->nt].tainted++) {
                    x->t[x->nt].taint_from = by - 1;
                }
            }
        }
    }
    return 0;
}

static int w_write(void *opaque, uint32_t iova, const void *buf, size_t len)
{
    struct ctx *x = opaque;
    int rc = x->inner.write(x->inner.opaque, iova, buf, len);
    if (rc) {
        return rc;
    }
    for (size_t i = 0; i < x->nw; i++) {
        struct watch *w = &x->w[i];
        uint64_t lo, hi;
        overlap(w, iova, len, &lo, &hi);
        if (lo >= hi) {
            continue;
        }
        for (uint64_t a = lo; a < hi; a++) {
            w->writer[a - w->iova] = (uint32_t)x->nt + 1;
        }
        memcpy(w->model + (lo - w->iova), (const uint8_t *)buf + (lo - iova), hi - lo);
        if (x->isolate && w->expect) {   /* later tasks read what the board wrote */
            x->inner.write(x->inner.opaque, (uint32_t)lo, w->expect + (lo - w->iova), hi - lo);
        }
    }
    return 0;
}

/* ---- what a task is, from the register file after it ran ---- */

static void task_geom(const struct rn_core *c, struct geom *g)
{
    uint32_t con1 = R(c, CNA_CONV_CON1);
    int dw = F(con1, CNA, CONV_CON1, CONV_MODE) == 3;
    memset(g, 0, sizeof(*g));
    g->out_bytes = rn_out_bytes(F(R(c, DPU_DATA_FORMAT), DPU, DATA_FORMAT, OUT_PRECISION));
    if (!g->out_bytes) {
        return;
    }
    g->wo = F(R(c, DPU_DATA_CUBE_WIDTH), DPU, DATA_CUBE_WIDTH, WIDTH) + 1;
    g->ho = F(R(c, DPU_DATA_CUBE_HEIGHT), DPU, DATA_CUBE_HEIGHT, HEIGHT) + 1;
    g->co = F(R(c, DPU_DATA_CUBE_CHANNEL), DPU, DATA_CUBE_CHANNEL, CHANNEL) + 1;
    g->c2 = 16 / g->out_bytes;
    g->nsurf = (g->co + g->c2 - 1) / g->c2;
    g->group_bytes = (dw ? 64u : 32u) * g->out_bytes;
    g->base = R(c, DPU_DST_BASE_ADDR) + (R(c, PC_TASK_DMA_BASE_ADDR) & ~0xFu);
    g->surf_add = R(c, DPU_SURFACE_ADD) & ~0xFu;
    g->surf_stride = R(c, DPU_DST_SURF_STRIDE) & ~0xFu;
    g->valid = 1;
}

/* (channel, y, x, byte of the element) of an address in the task's output; -1 if outside. */
static int geom_locate(const struct geom *g, uint32_t addr, uint32_t *ch, uint32_t *y,
                       uint32_t *x, uint32_t *byte)
{
    uint64_t surf = (uint64_t)g->wo * g->ho * 16, rel = (uint32_t)(addr - g->base);
    if (!g->valid) {
        return -1;
    }
    for (uint32_t j = 0; j < g->nsurf; j++) {
        uint64_t off = rn_wdma_offset(j, g->group_bytes, g->surf_add, g->surf_stride) & 0xFFFFFFFFu;
        if (rel >= off && rel - off < surf) {
            uint64_t in = rel - off, pix = in / 16;
            uint32_t lane = (uint32_t)(in % 16);
            *ch = j * g->c2 + lane / g->out_bytes;
            *byte = lane % g->out_bytes;
            *y = (uint32_t)(pix / g->wo);
            *x = (uint32_t)(pix % g->wo);
            return *ch < g->co ? 0 : -1;
        }
    }
    return -1;
}

static uint32_t task_rules(const struct rn_core *c, const struct rn_task_stats *st, uint32_t in_kick)
{
    uint32_t r = 0, con1 = R(c, CNA_CONV_CON1), argb = F(con1, CNA, CONV_CON1, ARGB_IN);
    uint32_t bs = R(c, DPU_BS_CFG), ew = R(c, DPU_EW_CFG), chan = R(c, DPU_DATA_CUBE_CHANNEL);
    uint32_t prec = F(R(c, DPU_DATA_FORMAT), DPU, DATA_FORMAT, OUT_PRECISION);
    uint32_t ci = F(R(c, CNA_DATA_SIZE1), CNA, DATA_SIZE1, DATAIN_CHANNEL);
    uint32_t wi = F(R(c, CNA_DATA_SIZE0), CNA, DATA_SIZE0, DATAIN_WIDTH);
    uint32_t hi = F(R(c, CNA_DATA_SIZE0), CNA, DATA_SIZE0, DATAIN_HEIGHT);
    uint32_t pt = F(R(c, CNA_PAD_CON0), CNA, PAD_CON0, PAD_TOP);
    uint32_t pl = F(R(c, CNA_PAD_CON0), CNA, PAD_CON0, PAD_LEFT);
    uint32_t pad1 = R(c, CNA_PAD_CON1);
    int dw = F(con1, CNA, CONV_CON1, CONV_MODE) == 3;
    int bs_on = !F(bs, DPU, BS_CFG, BS_BYPASS), bias_mem = 0;
    uint32_t ch = F(chan, DPU, DATA_CUBE_CHANNEL, CHANNEL), orig = F(chan, DPU, DATA_CUBE_CHANNEL,
                                                                     ORIG_CHANNEL);

    if (st->error && !st->macs) {
        r |= 1u << RULE_REFUSED;
    }
    r |= in_kick ? 1u << RULE_CHAINED : 0;
    r |= F(R(c, CNA_CBUF_CON0), CNA, CBUF_CON0, WEIGHT_REUSE) ? 1u << RULE_WEIGHT_REUSE : 0;
    r |= argb >= 8 && argb <= 11 ? 1u << RULE_DENSE : 0;
    r |= ci % (dw ? 64u : 32u) ? 1u << RULE_WGROUP : 0;
    r |= !F(R(c, CNA_CVT_CON0), CNA, CVT_CON0, CVT_BYPASS) ? 1u << RULE_CVT : 0;
    r |= F(R(c, CORE_CLIP_TRUNCATE), CORE, CLIP_TRUNCATE, CLIP_TRUNCATE) ? 1u << RULE_TRUNC : 0;
    r |= bs_on && !F(R(c, DPU_BS_OW_CFG), DPU, BS_OW_CFG, OD_BYPASS) ? 1u << RULE_CPEND : 0;
    if (bs_on && !F(bs, DPU, BS_CFG, BS_ALU_BYPASS) && F(bs, DPU, BS_CFG, BS_ALU_SRC)) {
        bias_mem = 1;
        r |= 1u << RULE_BIAS;
    }
    r |= !F(ew, DPU, EW_CFG, EW_BYPASS) && !F(ew, DPU, EW_CFG, EW_OP_BYPASS) ? 1u << RULE_EW : 0;
    r |= prec == RN_PREC_INT16 ? 1u << RULE_INT16 : prec == RN_PREC_INT32 ? 1u << RULE_INT32
         : prec == RN_PREC_FP32 ? 1u << RULE_FP32 : 0;
    r |= !F(R(c, CORE_MISC_CFG), CORE, MISC_CFG, QD_EN) ? 1u << RULE_RAW : 0;
    r |= F(R(c, DPU_OUT_CVT_SHIFT), DPU, OUT_CVT_SHIFT, CVT_ROUND) ? 1u << RULE_ROUND_AWAY : 0;
    if (ch > orig) {
        r |= 1u << RULE_PAD_CHANNELS;
        r |= bias_mem ? 1u << RULE_BIAS_OVERREAD : 0;
    }
    if (st->out_c > (dw ? 64u : 32u)) {
        uint32_t per = (dw ? 64u : 32u) * rn_out_bytes(prec) / 16u;
        uint32_t plain = per * (R(c, DPU_DST_SURF_STRIDE) & ~0xFu);
        r |= (R(c, DPU_SURFACE_ADD) & ~0xFu) != plain ? 1u << RULE_SURF_ADD : 0;
    }
    if (dw && ((pad1 ^ (pad1 >> 8)) & 0xFF)) {
        /* padding on any side: top/left from PAD_CON0, bottom/right from the window */
        uint32_t need_w = (st->out_w - 1) * st->stride + st->kw;
        uint32_t sy = F(R(c, CNA_CONV_CON3), CNA, CONV_CON3, CONV_Y_STRIDE);
        uint32_t need_h = (st->out_h - 1) * (sy ? sy : 1) + st->kh;
        if (pt || pl || need_w > wi + pl || need_h > hi + pt) {
            r |= 1u << RULE_PAD_LANES;
        }
    }
    return r;
}

static void on_task(void *opaque, const struct rn_task_stats *st)
{
    struct ctx *x = opaque;
    struct task *t;
    if (x->nt >= x->cap) {
        return;
    }
    t = &x->t[x->nt];
    t->kick = x->kick;
    t->in_kick = x->in_kick++;
    t->regcmd = st->regcmd_iova;
    t->amount = x->next_amount;
    t->st = *st;
    task_geom(&x->core, &t->g);
    t->rules = task_rules(&x->core, st, t->in_kick);
    /* what the next task of the kick fetches: this task's link, or the same amount */
    x->next_amount = F(R(&x->core, PC_REGISTER_AMOUNTS), PC, REGISTER_AMOUNTS, PC_DATA_AMOUNT);
    x->nt++;
    if (x->nt < x->cap) {
        memset(&x->t[x->nt], 0, sizeof(x->t[x->nt]));
    }
}

static void model_log(void *opaque, enum rn_log_kind kind, const char *msg)
{
    struct ctx *x = opaque;
    if (x->verbose) {
        fprintf(stderr, "%s: %s\n", kind == RN_LOG_UNIMP ? "unimplemented" : "guest-error", msg);
    }
}

/* ---- output ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void json_names(FILE *f, uint32_t quirks, uint32_t rules)
{
    int first = 1;
    fputc('[', f);
    for (int i = 0; i < RULE_COUNT; i++) {
        if (rules >> i & 1) {
            fprintf(f, "%s\"%s\"", first ? "" : ",", rule_names[i]);
            first = 0;
        }
    }
    for (int i = 0; i < RN_QUIRK_COUNT; i++) {
        if (quirks >> i & 1) {
            fprintf(f, "%s\"Q15 %s\"", first ? "" : ",", rn_quirk_table[i].name);
            first = 0;
        }
    }
    fputc(']', f);
}

static void print_names(uint32_t rules, uint32_t quirks, uint32_t quirks_off)
{
    const char *sep = "";
    for (int i = 0; i < RULE_COUNT; i++) {
        if (rules >> i & 1) {
            printf("%s%s", sep, rule_names[i]);
            sep = ", ";
        }
    }
    for (int i = 0; i < RN_QUIRK_COUNT; i++) {
        if (quirks >> i & 1) {
            printf("%sQ15 quirk %s", sep, rn_quirk_table[i].name);
            sep = ", ";
        }
    }
    for (int i = 0; i < RN_QUIRK_COUNT; i++) {
        if (quirks_off >> i & 1) {
            printf("%sQ15 %s (trigger held, switched off)", sep, rn_quirk_table[i].name);
            sep = ", ";
        }
    }
    if (!*sep) {
        printf("plain conv arithmetic");
    }
}

static void print_dis(struct ctx *x, const struct task *t)
{
    uint32_t n = RN_PC_FETCH_ENTRIES(t->amount);
    struct dis_counts k = { { 0 } };
    uint8_t b[8];
    printf("      regcmd at 0x%08x, %u entries (rknpu-dis):\n", t->regcmd, n);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = 0;
        if (x->inner.read(x->inner.opaque, t->regcmd + i * 8, b, 8)) {
            printf("      (the regcmd leaves the job's memory at entry %u)\n", i);
            break;
        }
        for (int j = 7; j >= 0; j--) {
            e = e << 8 | b[j];
        }
        dis_entry(stdout, "      ", i, e, 1, &k);
        if (rn_entry_kind(e) == RN_ENTRY_OP_EN) {
            if (i + 1 < n) {
                printf("      (%u entries after op_en not applied)\n", n - i - 1);
            }
            break;
        }
    }
}

static const char *task_label(const struct task *t, char *buf, size_t len)
{
    if (t->in_kick) {
        snprintf(buf, len, "kick %zu task %u", t->kick, t->in_kick);
    } else {
        snprintf(buf, len, "kick %zu", t->kick);
    }
    return buf;
}

enum verdict { V_IDENTICAL, V_DIFFERS, V_UNCHECKED };
/* Which tasks get their disassembly printed. */
enum { DIS_NONE, DIS_CAUSE, DIS_DIFFERING, DIS_ALL };

static enum verdict verdict(const struct task *t)
{
    if (t->differ || t->missed) {
        return V_DIFFERS;
    }
    return t->written ? V_IDENTICAL : V_UNCHECKED;
}

static void report_task(struct ctx *x, const struct task *t, int dis, int quiet)
{
    const struct rn_task_stats *st = &t->st;
    enum verdict v = verdict(t);
    char lab[64], shape[128];
    if (quiet && v != V_DIFFERS) {
        return;
    }
    snprintf(shape, sizeof(shape), "%s %ux%ux%u -> %ux%ux%u k%ux%u s%u", st->depthwise ? "dw  " : "conv",
             st->in_w, st->in_h, st->in_c, st->out_w, st->out_h, st->out_c, st->kw, st->kh,
             st->stride);
    printf("  %-16s %-44s ", task_label(t, lab, sizeof(lab)), shape);
    if (v == V_IDENTICAL) {
        printf("identical (%llu bytes)", (unsigned long long)t->written);
    } else if (v == V_UNCHECKED) {
        printf("unchecked (wrote none of the captured output BOs)");
    } else {
        uint32_t ch, y, xx, byte;
        printf("DIFFERS: %llu of %llu bytes", (unsigned long long)(t->differ + t->missed),
               (unsigned long long)(t->written + t->missed));
        if (t->missed) {
            printf(" (%llu the model did not write)", (unsigned long long)t->missed);
        }
        printf("; first at 0x%08x", t->first);
        if (!geom_locate(&t->g, t->first, &ch, &y, &xx, &byte)) {
            printf(" = (channel %u, y %u, x %u)", ch, y, xx);
            if (t->g.out_bytes > 1) {
                printf(" byte %u of %u", byte, t->g.out_bytes);
            }
        }
        printf(": board 0x%02x, emulator 0x%02x", t->first_board, t->first_model);
    }
    if (st->error) {
        printf("  [model: error bits 0x%x]", st->error);
    }
    printf("\n      rules: ");
    print_names(t->rules, st->quirks, st->quirks_off);
    printf("\n");
    if (v == V_DIFFERS && t->tainted) {
        char from[64];
        printf("      input: read %llu bytes that %s had written differently: may be a consequence\n",
               (unsigned long long)t->tainted, task_label(&x->t[t->taint_from], from, sizeof(from)));
    }
    if (dis == DIS_ALL || (v == V_DIFFERS && (dis == DIS_DIFFERING || (dis == DIS_CAUSE &&
                                                                       !t->tainted)))) {
        print_dis(x, t);
    }
}

static void report_json(FILE *f, struct ctx *x, const char *dir, int first_job)
{
    fprintf(f, "%s\n  {\"dir\":", first_job ? "" : ",");
    json_str(f, dir);
    fprintf(f, ",\"unattributed\":%llu,\"tasks\":[", (unsigned long long)x->unattributed);
    for (size_t i = 0; i < x->nt; i++) {
        const struct task *t = &x->t[i];
        static const char *const vn[] = { "identical", "differs", "unchecked" };
        uint32_t ch, y, xx, byte;
        fprintf(f, "%s\n    {\"kick\":%zu,\"task\":%u,\"regcmd\":%u,\"verdict\":\"%s\",\"bytes\":%llu,"
                "\"differ\":%llu,\"not_written\":%llu,\"error\":%u,\"rules\":",
                i ? "," : "", t->kick, t->in_kick, t->regcmd, vn[verdict(t)],
                (unsigned long long)t->written, (unsigned long long)t->differ,
                (unsigned long long)t->missed, t->st.error);
        json_names(f, t->st.quirks, t->rules);
        if (t->have_first) {
            fprintf(f, ",\"first\":{\"iova\":%u,\"board\":%u,\"emulator\":%u", t->first,
                    t->first_board, t->first_model);
            if (!geom_locate(&t->g, t->first, &ch, &y, &xx, &byte)) {
                fprintf(f, ",\"channel\":%u,\"y\":%u,\"x\":%u", ch, y, xx);
            }
            fputc('}', f);
        }
        if (t->tainted) {
            fprintf(f, ",\"tainted_bytes\":%llu,\"tainted_by_kick\":%zu",
                    (unsigned long long)t->tainted, x->t[t->taint_from].kick);
        }
        fputc('}', f);
    }
    fprintf(f, "\n  ]}");
}

/* ---- one job folder ---- */

static char *expected_name(const char *dump)
{
    const char *base = strrchr(dump, '/');
    size_t dirlen = base ? (size_t)(base - dump + 1) : 0;
    char *out = malloc(strlen(dump) + 16);
    if (!out) {
        oom();
    }
    base = dump + dirlen;
    memcpy(out, dump, dirlen);
    sprintf(out + dirlen, "expected-%s", strncmp(base, "out-", 4) ? base : base + 4);
    return out;
}

static void add_first(struct task *t, uint32_t addr, uint8_t board, uint8_t model)
{
    if (!t->have_first) {
        t->have_first = 1;
        t->first = addr;
        t->first_board = board;
        t->first_model = model;
    }
}

/* The last task whose output surfaces hold addr, or -1. */
static long owner(struct ctx *x, uint32_t addr)
{
    uint32_t ch, y, xx, byte;
    for (size_t i = x->nt; i-- > 0;) {
        if (!geom_locate(&x->t[i].g, addr, &ch, &y, &xx, &byte)) {
            return (long)i;
        }
    }
    return -1;
}

static void compare(struct ctx *x)
{
    for (size_t i = 0; i < x->nw; i++) {
        struct watch *w = &x->w[i];
        uint8_t *now;
        if (!w->expect) {
            continue;
        }
        if (!(now = malloc(w->size ? w->size : 1))) {
            oom();
        }
        if (x->inner.read(x->inner.opaque, w->iova, now, w->size)) {
            free(now);
            continue;
        }
        for (uint32_t k = 0; k < w->size; k++) {
            uint32_t by = w->writer[k];
            if (by) {
                x->t[by - 1].written++;
                now[k] = w->model[k];
            }
            if (now[k] == w->expect[k]) {
                continue;
            }
            if (by) {
                x->t[by - 1].differ++;
                add_first(&x->t[by - 1], w->iova + k, w->expect[k], now[k]);
            } else {
                long o = owner(x, w->iova + k);
                if (o < 0) {
                    x->unattributed++;
                } else {
                    x->t[o].missed++;
                    add_first(&x->t[o], w->iova + k, w->expect[k], now[k]);
                }
            }
        }
        free(now);
    }
}

struct opts {
    const char *quirks;
    int dis, quiet, verbose, isolate;
    FILE *json;
};

static int diff_job(const char *dir, const struct opts *o, struct summary *s)
{
    struct ctx x;
    size_t ntask_max = 0, checked = 0;
    int rc = 0;
    char err[200];

    memset(&x, 0, sizeof(x));
    x.verbose = o->verbose;
    x.isolate = o->isolate;
    printf("%s\n", dir);
    if (job_load(&x.job, dir)) {
        printf("  not a readable job folder (see above)\n");
        s->bad_jobs++;
        return 2;
    }
    x.inner = job_mem(&x.job);
    x.w = calloc(x.job.ndump ? x.job.ndump : 1, sizeof(*x.w));
    if (!x.w) {
        oom();
    }
    for (size_t i = 0; i < x.job.ndump; i++) {
        const struct job_dump *d = &x.job.dump[i];
        struct watch *w = &x.w[x.nw];
        char *name = expected_name(d->path);
        const char *why;
        size_t len;
        w->iova = d->iova;
        w->size = d->size;
        w->name = d->path;
        if (job_read_file(&x.job, name, &w->expect, &len, &why)) {
            printf("  %s: %s: not compared\n", name, why);
        } else if (len != d->size) {
            printf("  %s: %zu bytes, the dump has %u: not compared\n", name, len, d->size);
            free(w->expect);
            w->expect = NULL;
        } else {
            checked++;
        }
        free(name);
        if (!(w->writer = calloc(d->size ? d->size : 1, sizeof(uint32_t))) ||
            !(w->model = malloc(d->size ? d->size : 1))) {
            oom();
        }
        x.nw++;
    }
    if (!checked) {
        printf("  no expected-*.bin for any dump: not a capture (userspace/rocket-capture.c)\n");
        rc = 2;
        s->bad_jobs++;
        goto out;
    }
    /* one task per kick in mainline captures; chained kicks may hold up to 4095 each */
    for (size_t k = 0; k < x.job.nkick; k++) {
        uint32_t n = x.job.kick[k].task_con & 0xFFF;
        ntask_max += n ? n : 1;
    }
    x.cap = ntask_max;
    x.t = calloc(x.cap + 1, sizeof(*x.t));
    if (!x.t) {
        oom();
    }
    rn_core_init(&x.core);
    x.core.log = model_log;
    x.core.log_opaque = &x;
    x.core.on_task = on_task;
    x.core.task_opaque = &x;
    if (o->quirks && rn_quirks_parse(o->quirks, &x.core.quirks, err, sizeof(err))) {
        fprintf(stderr, "rknpu-diff: --quirks: %s\n", err);
        exit(2);
    }
    if (x.job.clock_hz) {
        x.core.timing.clock_hz = x.job.clock_hz;
    }
    {
        struct rn_mem m = { &x, w_read, w_write };
        for (x.kick = 0; x.kick < x.job.nkick; x.kick++) {
            struct rn_kick_result res;
            x.in_kick = 0;
            x.next_amount = x.job.kick[x.kick].amount;
            job_run_kick_on(&x.job, &x.core, x.kick, &m, &res);
            if (res.hang) {
                printf("  kick %zu: the model hangs (core reset)\n", x.kick);
            }
        }
    }
    compare(&x);
    for (size_t i = 0; i < x.nt; i++) {
        enum verdict v = verdict(&x.t[i]);
        report_task(&x, &x.t[i], o->dis, o->quiet);
        s->tasks++;
        s->identical += v == V_IDENTICAL;
        s->unchecked += v == V_UNCHECKED;
        if (v == V_DIFFERS) {
            s->differ++;
            s->consequence += x.t[i].tainted != 0;
            rc = 1;
        }
    }
    if (x.unattributed) {
        printf("  %llu differing bytes of the captured outputs lie in no task's output surfaces\n",
               (unsigned long long)x.unattributed);
        rc = 1;
    }
    if (o->json) {
        report_json(o->json, &x, dir, s->jobs == 0);
    }
    s->jobs++;
    rn_core_destroy(&x.core);
out:
    for (size_t i = 0; i < x.nw; i++) {
        free(x.w[i].expect);
        free(x.w[i].writer);
        free(x.w[i].model);
    }
    free(x.w);
    free(x.t);
    job_free(&x.job);
    return rc;
}

/* ---- finding job folders ---- */

static int is_job(const char *dir)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof(p), "%s/job.txt", dir);
    return !lstat(p, &st) && S_ISREG(st.st_mode);
}

static int only_dirs(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Every job folder at or below dir (sorted by name, no symbolic links, depth-limited). */
static int walk(const char *dir, int depth, const struct opts *o, struct summary *s, int *found)
{
    struct dirent **list;
    int n, rc = 0;
    if (is_job(dir)) {
        (*found)++;
        return diff_job(dir, o, s);
    }
    if (depth > 8 || (n = scandir(dir, &list, only_dirs, alphasort)) < 0) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char p[4200];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, list[i]->d_name);
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) {
            int r = walk(p, depth + 1, o, s, found);
            rc = r > rc ? r : rc;
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rknpu-diff [--isolate] [--quirks SPEC] [--dis cause|differing|all|none] [-q]\n"
            "                  [-v] [--json FILE] CAPTURE...\n"
            "Replays captured NPU jobs (folders with job.txt and expected-*.bin, as\n"
            "userspace/rocket-capture.so writes them on a board or in the emulator; a folder is\n"
            "searched for them) on the core model and compares every task's output with what the\n"
            "NPU wrote. Per task: identical, or the bytes that differ with the first as (channel,\n"
            "y, x), its regcmd disassembly and the modelled rules (HARDWARE-UNKNOWNS.md Qn) and\n"
            "quirks it exercised, and whether it read an earlier task's differing output.\n"
            "--isolate: every task reads what the board wrote, not the model's earlier outputs\n"
            "(each task judged on its own). --dis: disassembly of the differing tasks with clean\n"
            "inputs (cause, the default), of every differing task, of all, or of none.\n"
            "-q: only differing tasks. -v: the model's messages on stderr.\n"
            "Exit status: 0 every task identical, 1 some task differs, 2 unreadable input.\n");
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "quirks", required_argument, 0, 'Q' }, { "dis", required_argument, 0, 'd' },
        { "json", required_argument, 0, 'j' },   { "quiet", no_argument, 0, 'q' },
        { "verbose", no_argument, 0, 'v' },      { "help", no_argument, 0, 'h' },
        { "isolate", no_argument, 0, 'I' },
        { 0, 0, 0, 0 },
    };
    struct opts o = { .dis = DIS_CAUSE };
    struct summary s = { 0 };
    const char *json = NULL;
    int opt, rc = 0, found = 0;
    uint32_t probe;
    char err[200];

    while ((opt = getopt_long(argc, argv, "qvh", lopts, NULL)) != -1) {
        switch (opt) {
        case 'Q':
            if (rn_quirks_parse(optarg, &probe, err, sizeof(err))) {
                fprintf(stderr, "rknpu-diff: --quirks: %s\n", err);
                return 2;
            }
            o.quirks = optarg;
            break;
        case 'd':
            if (!strcmp(optarg, "none")) {
                o.dis = DIS_NONE;
            } else if (!strcmp(optarg, "cause")) {
                o.dis = DIS_CAUSE;
            } else if (!strcmp(optarg, "differing")) {
                o.dis = DIS_DIFFERING;
            } else if (!strcmp(optarg, "all")) {
                o.dis = DIS_ALL;
            } else {
                fprintf(stderr, "rknpu-diff: --dis: 'cause', 'differing', 'all' or 'none', "
                        "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'j': json = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'I': o.isolate = 1; break;
        case 'v': o.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (json && !(o.json = fopen(json, "w"))) {
        fprintf(stderr, "rknpu-diff: %s: %s\n", json, strerror(errno));
        return 2;
    }
    if (o.json) {
        fputs("{\"jobs\":[", o.json);
    }
    for (int i = optind; i < argc; i++) {
        struct stat st;
        int before = found, r;
        if (stat(argv[i], &st) || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "rknpu-diff: %s: not a folder\n", argv[i]);
            rc = 2;
            continue;
        }
        r = walk(argv[i], 0, &o, &s, &found);
        rc = r > rc ? r : rc;
        if (found == before) {
            fprintf(stderr, "rknpu-diff: %s: no job folder (job.txt) in it\n", argv[i]);
            rc = 2;
        }
    }
    printf("rknpu-diff: %zu job folder(s), %zu tasks: %zu identical, %zu differ", s.jobs, s.tasks,
           s.identical, s.differ);
    if (s.consequence) {
        printf(" (%zu of them read an earlier task's differing output: --isolate judges each "
               "task on the board's inputs)", s.consequence);
    }
    if (s.unchecked) {
        printf(", %zu unchecked", s.unchecked);
    }
    if (s.bad_jobs) {
        printf(", %zu folder(s) unreadable", s.bad_jobs);
    }
    printf("\nrknpu-diff: the emulator reproduces %zu of the %zu tasks of the board's run "
           "bit-exactly\n", s.identical, s.tasks);
    if (o.json) {
        fprintf(o.json, "\n],\"summary\":{\"jobs\":%zu,\"bad_jobs\":%zu,\"tasks\":%zu,"
                "\"identical\":%zu,\"differ\":%zu,\"consequence\":%zu,\"unchecked\":%zu}}\n",
                s.jobs, s.bad_jobs, s.tasks, s.identical, s.differ, s.consequence, s.unchecked);
        if (fclose(o.json)) {
            fprintf(stderr, "rknpu-diff: writing %s failed\n", json);
            rc = 2;
        }
    }
    return rc;
}
