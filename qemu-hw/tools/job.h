/* Job folders (JOB-FORMAT.md): parse, hold memory segments, run kicks on a core. */
#ifndef RKNPU_JOB_H
#define RKNPU_JOB_H

#include <stdint.h>
#include <stdio.h>

#include "rknpu.h"

struct job_segment {
    uint32_t iova;
    uint32_t size;
    uint8_t *data;
    char *file;                      /* as named in job.txt, NULL: zero-filled */
    int line;                        /* of its 'mem' line, for messages */
};

struct job_kick {
    uint32_t regcmd, amount, task_con, dma_base;
};

struct job_dump {
    uint32_t iova, size;
    char *path;
};

struct job {
    char *dir;
    int dirfd;                       /* the job folder; every file of job.txt is opened below it */
    uint64_t clock_hz;               /* 0: not given */
    struct job_segment *seg;
    size_t nseg;
    struct job_kick *kick;
    size_t nkick;
    struct job_dump *dump;
    size_t ndump;
};

/*
 * Parse dir/job.txt and load its segments; on failure prints why (with line), frees what it
 * took and returns -1. File names in job.txt must stay inside the folder: absolute paths, '..'
 * and symbolic links are refused (a job folder may come from an untrusted guest or archive).
 */
int job_load(struct job *j, const char *dir);
void job_free(struct job *j);
/* Memory interface over the job's segments. */
struct rn_mem job_mem(struct job *j);

/* Run kick k as mainline rocket does; returns the kick's result (reset after a hang). */
void job_run_kick(struct job *j, struct rn_core *c, size_t k, struct rn_kick_result *res);
/* The same on another memory interface (one that wraps job_mem(), e.g. to watch the DMA). */
void job_run_kick_on(struct job *j, struct rn_core *c, size_t k, const struct rn_mem *mem,
                     struct rn_kick_result *res);
/*
 * Read a whole file of the job folder (confined like the segments: relative, no '..', no
 * symbolic links); *data is malloc'ed. Returns -1 with *why set.
 */
int job_read_file(const struct job *j, const char *name, uint8_t **data, size_t *len,
                  const char **why);
/* Write the dump files under outdir (confined like the inputs); returns -1 on errors. */
int job_write_dumps(const struct job *j, const char *outdir);

#endif
