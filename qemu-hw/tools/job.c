/* Job folder reader and the segment-backed memory the core DMAs into. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Every file job.txt names stays inside its folder: a job folder can come from a guest capture or
 * an archive, and must not make rknpu-run read or overwrite host files. The lexical part of the
 * rule (relative, no '..') is checked while parsing, for a message with the line number.
 */
static const char *path_problem(const char *name)
{
    const char *p = name;
    if (!*name) {
        return "empty";
    }
    if (name[0] == '/') {
        return "an absolute path";
    }
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return "a path with a '..' component";
        }
        p += n;
        while (*p == '/') {
            p++;
        }
    }
    return NULL;
}

/* Refuse anything that is not a plain directory (intermediate) or regular file (last). */
static const char *entry_problem(int dirfd, const char *comp, int last, int may_be_new)
{
    struct stat st;
    if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW)) {
        return errno == ENOENT && may_be_new ? NULL : strerror(errno);
    }
    if (S_ISLNK(st.st_mode)) {
        return "a symbolic link (refused: it may point outside the folder)";
    }
    if (last ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)) {
        return last ? "not a regular file" : "not a directory";
    }
    return NULL;
}

/*
 * Open NAME below the folder DIRFD one component at a time, never following a symbolic link
 * (O_NOFOLLOW closes the race with the checks). Writing (O_WRONLY) creates or truncates a
 * regular file that has no other hard link. Returns an fd, or -1 with *why set.
 */
static int open_below(int dirfd, const char *name, int flags, const char **why)
{
    char *copy, *save = NULL, *comp, *next;
    int cur = dirfd, fd = -1, writing = (flags & O_ACCMODE) != O_RDONLY;
    struct stat st;

    *why = path_problem(name);
    if (*why) {
        return -1;
    }
    copy = strdup(name);
    if (!copy) {
        *why = strerror(ENOMEM);
        return -1;
    }
    comp = strtok_r(copy, "/", &save);
    for (; comp && (next = strtok_r(NULL, "/", &save)); comp = next) {
        int d;
        if (!strcmp(comp, ".")) {
            continue;
        }
        *why = entry_problem(cur, comp, 0, 0);
        d = *why ? -1 : openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0 && !*why) {
            *why = strerror(errno);
        }
        if (cur != dirfd) {
            close(cur);
        }
        cur = d;
        if (cur < 0) {
            goto out;
        }
    }
    *why = comp ? entry_problem(cur, comp, 1, writing) : "not a regular file";
    if (!*why) {
        fd = openat(cur, comp, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
        if (fd < 0) {
            *why = errno == ELOOP ? "a symbolic link (refused: it may point outside the folder)"
                                  : strerror(errno);
        } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
            *why = "not a regular file";
        } else if (writing && (st.st_nlink > 1 || ftruncate(fd, 0))) {
            *why = st.st_nlink > 1 ? "a file with several hard links (refused)" : strerror(errno);
        }
        if (*why && fd >= 0) {
            close(fd);
            fd = -1;
        }
    }
out:
    if (cur >= 0 && cur != dirfd) {
        close(cur);
    }
    free(copy);
    return fd;
}

/* Strict: a C literal (decimal, 0x.. hex or 0.. octal) and nothing else, no sign. */
static int parse_u32(const char *s, uint32_t *v)
{
    char *end;
    unsigned long long x;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    x = strtoull(s, &end, 0);
    if (errno || *end || end == s || x > 0xFFFFFFFFull) {
        return -1;
    }
    *v = (uint32_t)x;
    return 0;
}

static int grow(void **p, size_t n, size_t elem, const char *where)
{
    void *q = realloc(*p, (n + 1) * elem);
    if (!q) {
        fprintf(stderr, "%s: out of memory\n", where);
        return -1;
    }
    *p = q;
    return 0;
}

static int check_name(const char *name, const char *where)
{
    const char *why = path_problem(name);
    if (why) {
        fprintf(stderr, "%s: '%s' is %s; job files must be relative paths inside the folder\n",
                where, name, why);
        return -1;
    }
    return 0;
}

/* A 'mem' line: only recorded here; the data is read after the overlap check. */
static int add_segment(struct job *j, char **tok, int ntok, int lineno, const char *where)
{
    struct job_segment s = { 0 };
    if (ntok < 3 || ntok > 4 || parse_u32(tok[1], &s.iova) || parse_u32(tok[2], &s.size) ||
        !s.size || (uint64_t)s.iova + s.size > 0x100000000ull) {
        fprintf(stderr, "%s: expected 'mem IOVA SIZE [FILE]' inside the 32-bit space\n", where);
        return -1;
    }
    if (ntok == 4 && (check_name(tok[3], where) || !(s.file = strdup(tok[3])))) {
        return -1;
    }
    s.line = lineno;
    if (grow((void **)&j->seg, j->nseg, sizeof(*j->seg), where)) {
        free(s.file);
        return -1;
    }
    j->seg[j->nseg++] = s;
    return 0;
}

static int load_segment(struct job *j, struct job_segment *s)
{
    const char *why = NULL;
    size_t got = 0;
    int fd;
    s->data = calloc(1, s->size);
    if (!s->data) {
        fprintf(stderr, "%s/job.txt:%d: out of memory for %u bytes\n", j->dir, s->line, s->size);
        return -1;
    }
    if (!s->file) {
        return 0;
    }
    fd = open_below(j->dirfd, s->file, O_RDONLY, &why);
    if (fd < 0) {
        fprintf(stderr, "%s/job.txt:%d: cannot read %s: %s\n", j->dir, s->line, s->file, why);
        return -1;
    }
    while (got < s->size) {   /* a shorter file leaves the rest zero, as documented */
        ssize_t n = read(fd, s->data + got, s->size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "%s/job.txt:%d: reading %s: %s\n", j->dir, s->line, s->file,
                    strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct job_segment *x = a, *y = b;
    return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static int parse_line(struct job *j, char *line, int lineno, const char *where)
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
        if (n != 2 || parse_u32(tok[1], &hz) || !hz) {
            fprintf(stderr, "%s: expected 'clock HZ' (1 Hz or more)\n", where);
            return -1;
        }
        j->clock_hz = hz;
        return 0;
    }
    if (!strcmp(tok[0], "mem")) {
        return add_segment(j, tok, n, lineno, where);
    }
    if (!strcmp(tok[0], "kick")) {
        struct job_kick k = { 0 };
        if (n < 4 || n > 5 || parse_u32(tok[1], &k.regcmd) || parse_u32(tok[2], &k.amount) ||
            parse_u32(tok[3], &k.task_con) || (n == 5 && parse_u32(tok[4], &k.dma_base))) {
            fprintf(stderr, "%s: expected 'kick IOVA AMOUNT TASK_CON [DMA_BASE]'\n", where);
            return -1;
        }
        if (grow((void **)&j->kick, j->nkick, sizeof(*j->kick), where)) {
            return -1;
        }
        j->kick[j->nkick++] = k;
        return 0;
    }
    if (!strcmp(tok[0], "dump")) {
        struct job_dump d = { 0 };
        if (n != 4 || parse_u32(tok[1], &d.iova) || parse_u32(tok[2], &d.size)) {
            fprintf(stderr, "%s: expected 'dump IOVA SIZE FILE'\n", where);
            return -1;
        }
        if (check_name(tok[3], where) || !(d.path = strdup(tok[3])) ||
            grow((void **)&j->dump, j->ndump, sizeof(*j->dump), where)) {
            free(d.path);
            return -1;
        }
        j->dump[j->ndump++] = d;
        return 0;
    }
    fprintf(stderr, "%s: unknown keyword '%s'\n", where, tok[0]);
    return -1;
}

static int parse_file(struct job *j)
{
    char line[1024], where[1100];
    const char *why;
    int lineno = 0, rc = 0, fd = open_below(j->dirfd, "job.txt", O_RDONLY, &why);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        fprintf(stderr, "rknpu: cannot open %s/job.txt: %s\n", j->dir,
                fd < 0 ? why : strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    while (!rc && fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        snprintf(where, sizeof(where), "%s/job.txt:%d", j->dir, ++lineno);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
            fprintf(stderr, "%s: line longer than %zu characters\n", where, sizeof(line) - 2);
            rc = -1;
            break;
        }
        rc = parse_line(j, line, lineno, where);
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "rknpu: reading %s/job.txt: %s\n", j->dir, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}

int job_load(struct job *j, const char *dir)
{
    memset(j, 0, sizeof(*j));
    j->dirfd = -1;
    j->dir = strdup(dir);
    j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!j->dir || j->dirfd < 0) {
        fprintf(stderr, "rknpu: cannot open the job folder %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    if (parse_file(j)) {
        goto fail;
    }
    /* overlaps first: nothing is allocated for a job that will be refused */
    if (j->nseg) {
        qsort(j->seg, j->nseg, sizeof(*j->seg), cmp_seg);
    }
    for (size_t i = 1; i < j->nseg; i++) {
        if ((uint64_t)j->seg[i - 1].iova + j->seg[i - 1].size > j->seg[i].iova) {
            fprintf(stderr, "rknpu: %s: segments at 0x%x and 0x%x overlap\n", dir,
                    j->seg[i - 1].iova, j->seg[i].iova);
            goto fail;
        }
    }
    for (size_t i = 0; i < j->nseg; i++) {
        if (load_segment(j, &j->seg[i])) {
            goto fail;
        }
    }
    return 0;
fail:
    job_free(j);
    return -1;
}

void job_free(struct job *j)
{
    for (size_t i = 0; i < j->nseg; i++) {
        free(j->seg[i].data);
        free(j->seg[i].file);
    }
    for (size_t i = 0; i < j->ndump; i++) {
        free(j->dump[i].path);
    }
    free(j->seg);
    free(j->kick);
    free(j->dump);
    free(j->dir);
    if (j->dirfd >= 0) {
        close(j->dirfd);
    }
    memset(j, 0, sizeof(*j));
    j->dirfd = -1;
}

/* Copy between the segments and a buffer; fails if any byte is outside every segment. */
static int seg_access(struct job *j, uint32_t iova, uint8_t *buf, size_t len, int write)
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
        struct job_segment *s;
        size_t off, n;
        if (i >= j->nseg || j->seg[i].iova > a) {
            return -1;
        }
        s = &j->seg[i];
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
    return faulted(seg_access(opaque, iova, buf, len, 0), iova, len, "read");
}

static int mem_write(void *opaque, uint32_t iova, const void *buf, size_t len)
{
    return faulted(seg_access(opaque, iova, (uint8_t *)buf, len, 1), iova, len, "write");
}

struct rn_mem job_mem(struct job *j)
{
    struct rn_mem m = { j, mem_read, mem_write };
    return m;
}

void job_run_kick(struct job *j, struct rn_core *c, size_t k, struct rn_kick_result *res)
{
    struct rn_mem m = job_mem(j);
    job_run_kick_on(j, c, k, &m, res);
}

void job_run_kick_on(struct job *j, struct rn_core *c, size_t k, const struct rn_mem *mem,
                     struct rn_kick_result *res)
{
    const struct job_kick *kk = &j->kick[k];
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
        rn_core_kick_sync(c, mem, res);
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

int job_read_file(const struct job *j, const char *name, uint8_t **data, size_t *len,
                  const char **why)
{
    struct stat st;
    size_t got = 0;
    int fd = open_below(j->dirfd, name, O_RDONLY, why);
    *data = NULL;
    *len = 0;
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) || !(*data = malloc(st.st_size ? (size_t)st.st_size : 1))) {
        *why = strerror(errno ? errno : ENOMEM);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            *why = n < 0 ? strerror(errno) : "shorter than its size";
            free(*data);
            *data = NULL;
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int job_write_dumps(const struct job *j, const char *outdir)
{
    struct rn_mem m = job_mem((struct job *)j);
    int outfd, rc = 0;
    if (!j->ndump) {
        return 0;
    }
    outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (outfd < 0) {
        fprintf(stderr, "rknpu: cannot open the output folder %s: %s\n", outdir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < j->ndump && !rc; i++) {
        const struct job_dump *d = &j->dump[i];
        uint8_t *buf = malloc(d->size ? d->size : 1);
        const char *why = NULL;
        int fd = -1;
        if (!buf) {
            why = strerror(ENOMEM);
        } else if (m.read(m.opaque, d->iova, buf, d->size)) {
            why = "not inside the job's memory";
        } else if ((fd = open_below(outfd, d->path, O_WRONLY | O_CREAT, &why)) >= 0) {
            if (write_all(fd, buf, d->size)) {
                why = strerror(errno);
            }
            if (close(fd) && !why) {
                why = strerror(errno);
            }
        }
        if (why) {
            fprintf(stderr, "rknpu: cannot dump 0x%x+0x%x to %s/%s: %s\n", d->iova, d->size,
                    outdir, d->path, why);
            rc = -1;
        }
        free(buf);
    }
    close(outfd);
    return rc;
}
