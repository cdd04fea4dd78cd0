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
    uint64_t clock_hz;               /* 0: not given */
    struct job_segment *seg;
    size_t nseg;
    struct job_kick *kick;
    size_t nkick;
    struct job_dump *dump;
    size_t ndump;
};

/* Parse dir/job.txt and load its segments; on failure prints why (with line) and returns -1. */
int job_load(struct job *j, const char *dir);
void job_free(struct job *j);
/* Memory interface over the job's segments. */
struct rn_mem job_mem(struct job *j);

/* Run kick k as mainline rocket does; returns the kick's result (reset after a hang). */
void job_run_kick(struct job *j, struct rn_core *c, size_t k, struct rn_kick_result *res);
/* Write the dump files under outdir; returns -1 on I/O errors. */
int job_write_dumps(const struct job *j, const char *outdir);

#endif
