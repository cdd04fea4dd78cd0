/* Job folder reader and the segment-backed memory the core DMAs into. */
#include "job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p;
    if (name[0] == '/') {
        return strdup(name);
    }
    p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

static int parse_u32(const char *s, uint32_t *v)
{
    char *end;
    unsigned long long x;
    errno = 0;
    x = strtoull(s, &end, 0);
    if (errno || *end || end == s || x > 0xFFFFFFFFull) {
        return -1;
    }
    *v = (uint32_t)x;
    return 0;
}

static void *grow(void *p, size_t n, size_t elem)
{
    return realloc(p, (n + 1) * elem);
}

static int load_segment(struct job *j, char **tok, int ntok, const char *where)
{
    struct job_segment s = { 0 };
    if (ntok < 3 || ntok > 4 || parse_u32(tok[1], &s.iova) || parse_u32(tok[2], &s.size) ||
        !s.size || (uint64_t)s.iova + s.size > 0x100000000ull) {
        fprintf(stderr, "%s: expected 'mem IOVA SIZE [FILE]' inside the 32-bit space\n", where);
        return -1;
    }
    s.data = calloc(1, s.size);
    if (!s.data) {
        fprintf(stderr, "%s: out of memory for %u bytes\n", where, s.size);
        return -1;
    }
    if (ntok == 4) {
        char *p = path_join(j->dir, tok[3]);
        FILE *f = p ? fopen(p, "rb") : NULL;
        size_t got;
        if (!f) {
            fprintf(stderr, "%s: cannot open %s: %s\n", where, p ? p : tok[3], strerror(errno));
            free(p);
            free(s.data);
            return -1;
        }
        got = fread(s.data, 1, s.size, f);
        (void)got;   /* a shorter file leaves the rest zero, as documented */
        fclose(f);
        free(p);
    }
    j->seg = grow(j->seg, j->nseg, sizeof(*j->seg));
    j->seg[j->nseg++] = s;
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct job_segment *x = a, *y = b;
    return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static int parse_line(struct job *j, char *line, const char *where)
{
    char *tok[8], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 8; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (t[0] == '#') {
            break;
        }
        tok[n++] = t;
    }
    if (n == 0) {
        return 0;
    }
    if (!strcmp(tok[0], "rknpu-job")) {
        return n == 2 && !strcmp(tok[1], "1") ? 0 : (fprintf(stderr, "%s: unsupported version\n", where), -1);
    }
    if (!strcmp(tok[0], "clock")) {
        uint32_t hz;
        if (n != 2 || parse_u32(tok[1], &hz)) {
            fprintf(stderr, "%s: expected 'clock HZ'\n", where);
            return -1;
        }
        j->clock_hz = hz;
        return 0;
    }
    if (!strcmp(tok[0], "mem")) {
        return load_segment(j, tok, n, where);
    }
    if (!strcmp(tok[0], "kick")) {
        struct job_kick k = { 0 };
        if (n < 4 || n > 5 || parse_u32(tok[1], &k.regcmd) || parse_u32(tok[2], &k.amount) ||
            parse_u32(tok[3], &k.task_con) || (n == 5 && parse_u32(tok[4], &k.dma_base))) {
            fprintf(stderr, "%s: expected 'kick IOVA AMOUNT TASK_CON [DMA_BASE]'\n", where);
            return -1;
        }
        j->kick = grow(j->kick, j->nkick, sizeof(*j->kick));
        j->kick[j->nkick++] = k;
        return 0;
    }
    if (!strcmp(tok[0], "dump")) {
        struct job_dump d = { 0 };
        if (n != 4 || parse_u32(tok[1], &d.iova) || parse_u32(tok[2], &d.size)) {
            fprintf(stderr, "%s: expected 'dump IOVA SIZE FILE'\n", where);
            return -1;
        }
        d.path = strdup(tok[3]);
        j->dump = grow(j->dump, j->ndump, sizeof(*j->dump));
        j->dump[j->ndump++] = d;
        return 0;
    }
    fprintf(stderr, "%s: unknown keyword '%s'\n", where, tok[0]);
    return -1;
}

int job_load(struct job *j, const char *dir)
{
    char *path, line[1024], where[1100];
    FILE *f;
    int lineno = 0, rc = 0;
    memset(j, 0, sizeof(*j));
    j->dir = strdup(dir);
    path = path_join(dir, "job.txt");
    f = path ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "rknpu: cannot open %s/job.txt: %s\n", dir, strerror(errno));
        free(path);
        return -1;
    }
    while (!rc && fgets(line, sizeof(line), f)) {
        snprintf(where, sizeof(where), "%s:%d", path, ++lineno);
        rc = parse_line(j, line, where);
    }
    fclose(f);
    free(path);
    if (rc) {
        return -1;
    }
    qsort(j->seg, j->nseg, sizeof(*j->seg), cmp_seg);
    for (size_t i = 1; i < j->nseg; i++) {
        if ((uint64_t)j->seg[i - 1].iova + j->seg[i - 1].size > j->seg[i].iova) {
            fprintf(stderr, "rknpu: %s: segments at 0x%x and 0x%x overlap\n", dir,
                    j->seg[i - 1].iova, j->seg[i].iova);
            return -1;
        }
    }
    return 0;
}

void job_free(struct job *j)
{
    for (size_t i = 0; i < j->nseg; i++) {
        free(j->seg[i].data);
    }
    for (size_t i = 0; i < j->ndump; i++) {
        free(j->dump[i].path);
    }
    free(j->seg);
    free(j->kick);
    free(j->dump);
    free(j->dir);
    memset(j, 0, sizeof(*j));
}

/* Copy between the segments and a buffer; fails if any byte is outside every segment. */
static int access(struct job *j, uint32_t iova, uint8_t *buf, size_t len, int write)
{
    uint64_t a = iova, end = (uint64_t)iova + len;
    size_t lo = 0, hi = j->nseg;
    while (lo < hi) {   /* first segment ending after a */
        size_t mid = (lo + hi) / 2;
        if ((uint64_t)j->seg[mid].iova + j->seg[mid].size <= a) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t i = lo; a < end; i++) {
        struct job_segment *s = &j->seg[i];
        size_t off, n;
        if (i >= j->nseg || s->iova > a) {
            return -1;
        }
        off = (size_t)(a - s->iova);
        n = (size_t)(end - a < s->size - off ? end - a : s->size - off);
        if (write) {
            memcpy(s->data + off, buf, n);
        } else {
            memcpy(buf, s->data + off, n);
        }
        buf += n;
        a += n;
    }
    return 0;
}

/* A fault is what an IOMMU would report: say where, as QEMU's IOMMU trace would. */
static int faulted(int rc, uint32_t iova, size_t len, const char *what)
{
    if (rc) {
        fprintf(stderr, "rknpu: DMA %s of %zu bytes at 0x%08x leaves the job's memory\n", what,
                len, iova);
    }
    return rc;
}

static int mem_read(void *opaque, uint32_t iova, void *buf, size_t len)
{
    return faulted(access(opaque, iova, buf, len, 0), iova, len, "read");
}

static int mem_write(void *opaque, uint32_t iova, const void *buf, size_t len)
{
    return faulted(access(opaque, iova, (uint8_t *)buf, len, 1), iova, len, "write");
}

struct rn_mem job_mem(struct job *j)
{
    struct rn_mem m = { j, mem_read, mem_write };
    return m;
}

void job_run_kick(struct job *j, struct rn_core *c, size_t k, struct rn_kick_result *res)
{
    const struct job_kick *kk = &j->kick[k];
    struct rn_mem m = job_mem(j);
    /* rocket_job_hw_submit(), in order */
    rn_core_write(c, RN_PC_BASE_ADDRESS, 1);
    rn_core_write(c, RN_CNA_S_POINTER, 0xE);
    rn_core_write(c, RN_CORE_S_POINTER, 0xE);
    rn_core_write(c, RN_PC_BASE_ADDRESS, kk->regcmd);
    rn_core_write(c, RN_PC_REGISTER_AMOUNTS, kk->amount);
    rn_core_write(c, RN_PC_INTERRUPT_MASK, RN_IRQ_DPU_0 | RN_IRQ_DPU_1);
    rn_core_write(c, RN_PC_INTERRUPT_CLEAR, RN_IRQ_DPU_0 | RN_IRQ_DPU_1);
    rn_core_write(c, RN_PC_TASK_CON, kk->task_con);
    rn_core_write(c, RN_PC_TASK_DMA_BASE_ADDR, kk->dma_base);
    if (rn_core_write(c, RN_PC_OPERATION_ENABLE, 1)) {
        rn_core_kick_sync(c, &m, res);
    } else {
        memset(res, 0, sizeof(*res));
    }
    if (res->hang) {
        rn_core_reset(c);   /* what the driver's timeout handler does */
        return;
    }
    res->raw_bits = rn_core_read(c, RN_PC_INTERRUPT_RAW_STATUS);
    /* rocket_job_handle_irq() */
    rn_core_write(c, RN_PC_OPERATION_ENABLE, 0);
    rn_core_write(c, RN_PC_INTERRUPT_CLEAR, RN_IRQ_ALL);
}

int job_write_dumps(const struct job *j, const char *outdir)
{
    struct rn_mem m = job_mem((struct job *)j);
    for (size_t i = 0; i < j->ndump; i++) {
        const struct job_dump *d = &j->dump[i];
        uint8_t *buf = malloc(d->size ? d->size : 1);
        char *p = path_join(outdir, d->path);
        FILE *f = NULL;
        int ok = buf && p && !m.read(m.opaque, d->iova, buf, d->size) && (f = fopen(p, "wb")) &&
                 fwrite(buf, 1, d->size, f) == d->size;
        if (f && fclose(f)) {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "rknpu: cannot dump 0x%x+0x%x to %s\n", d->iova, d->size,
                    p ? p : d->path);
        }
        free(buf);
        free(p);
        if (!ok) {
            return -1;
        }
    }
    return 0;
}
