/*
 * Output rows of one task split over a small pool of host threads (rn_core.threads > 1).
 *
 * Every row is computed by exactly one part with its own scratch buffers, from inputs no part
 * writes, so the bytes do not depend on the number of threads or on which part took which rows.
 * Parts take chunks of rows from a shared counter: a busy host CPU slows one part, not the task.
 * Part 0 is the calling thread and uses the core's own scratch, so threads = 1 is the plain loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* sched_getaffinity */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct rn_part {
    struct rn_pool *pool;
    struct rn_scratch *scratch;
    uint32_t error;                 /* RN_ERR_* a part met (a scratch buffer it could not get) */
};

struct rn_pool {
    struct rn_core *c;
    unsigned workers;               /* threads besides the caller */
    unsigned asked;                 /* threads it was started for (workers may be fewer) */
    pthread_t *tid;
    struct rn_part *parts;          /* [0]: the caller's (core's scratch), then one per worker */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;                   /* bumped per task: workers start on a new value */
    unsigned busy;                  /* workers still on the current task */
    bool quit;
    rn_rows_fn *fn;
    void *ctx;
    uint32_t rows, chunk;
    atomic_uint next;               /* the first row no part has taken */
};

void *rn_part_scratch(struct rn_part *p, enum rn_buf which, size_t bytes)
{
    void *b = rn_scratch_in(&p->scratch, which, bytes);
    if (!b) {
        p->error |= RN_ERR_DMA_READ;
    }
    return b;
}

static void take_rows(struct rn_pool *pool, struct rn_part *part)
{
    for (;;) {
        uint32_t y = atomic_fetch_add_explicit(&pool->next, pool->chunk, memory_order_relaxed);
        if (y >= pool->rows || rn_cancelled(pool->c)) {
            return;
        }
        uint32_t end = pool->rows - y < pool->chunk ? pool->rows : y + pool->chunk;
        pool->fn(pool->ctx, part, y, end);
    }
}

static void *worker(void *arg)
{
    struct rn_part *part = arg;
    struct rn_pool *pool = part->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->quit && pool->gen == seen) {
            pthread_cond_wait(&pool->go, &pool->mu);
        }
        if (pool->quit) {
            break;
        }
        seen = pool->gen;
        pthread_mutex_unlock(&pool->mu);
        take_rows(pool, part);
        pthread_mutex_lock(&pool->mu);
        if (--pool->busy == 0) {
            pthread_cond_signal(&pool->done);
        }
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static struct rn_pool *pool_start(struct rn_core *c, unsigned workers)
{
    struct rn_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        return NULL;
    }
    pool->c = c;
    pool->tid = calloc(workers, sizeof(*pool->tid));
    pool->parts = calloc(1 + (size_t)workers, sizeof(*pool->parts));
    if (!pool->tid || !pool->parts) {
        free(pool->tid), free(pool->parts), free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->go, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (unsigned i = 0; i < workers; i++) {
        pool->parts[1 + i].pool = pool;
        if (pthread_create(&pool->tid[i], NULL, worker, &pool->parts[1 + i])) {
            break;   /* fewer threads: still correct */
        }
        pool->workers++;
    }
    return pool;
}

void rn_pool_destroy(struct rn_core *c)
{
    struct rn_pool *pool = c->pool;
    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->quit = true;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (unsigned i = 0; i < pool->workers; i++) {
        pthread_join(pool->tid[i], NULL);
        rn_scratch_free(&pool->parts[1 + i].scratch);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->go);
    pthread_cond_destroy(&pool->done);
    free(pool->tid);
    free(pool->parts);
    free(pool);
    c->pool = NULL;
}

void rn_pool_trim(struct rn_core *c, size_t keep)
{
    for (unsigned i = 0; c->pool && i < c->pool->workers; i++) {
        rn_scratch_trim(c->pool->parts[1 + i].scratch, keep);
    }
}

uint32_t rn_par_rows(struct rn_core *c, uint32_t rows, rn_rows_fn *fn, void *ctx)
{
    unsigned want = c->threads > RN_MAX_THREADS ? RN_MAX_THREADS : c->threads;
    struct rn_pool *pool = c->pool;
    if (pool && pool->asked != want) {
        rn_pool_destroy(c);
        pool = NULL;
    }
    if (!pool && want > 1 && rows > 1) {
        pool = c->pool = pool_start(c, want - 1);
        if (pool) {
            pool->asked = want;   /* a thread that could not start is not asked for again */
        }
    }
    struct rn_part solo = { .pool = pool, .scratch = c->scratch };
    if (!pool || !pool->workers || rows < 2) {
        fn(ctx, &solo, 0, rows);   /* (rows checks cancellation itself) */
        c->scratch = solo.scratch;
        return solo.error;
    }
    pool->parts[0] = solo;
    pool->fn = fn;
    pool->ctx = ctx;
    pool->rows = rows;
    /* a few chunks per part: even shares on an idle host, rebalanced on a busy one */
    pool->chunk = rows / (4 * (pool->workers + 1)) ? rows / (4 * (pool->workers + 1)) : 1;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    for (unsigned i = 0; i < pool->workers; i++) {
        pool->parts[1 + i].error = 0;
    }
    pthread_mutex_lock(&pool->mu);
    pool->busy = pool->workers;
    pool->gen++;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    take_rows(pool, &pool->parts[0]);
    pthread_mutex_lock(&pool->mu);
    while (pool->busy) {
        pthread_cond_wait(&pool->done, &pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    uint32_t error = pool->parts[0].error;
    c->scratch = pool->parts[0].scratch;
    for (unsigned i = 0; i < pool->workers; i++) {
        error |= pool->parts[1 + i].error;
    }
    return error;
}

uint32_t rn_threads_auto(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
    }
#endif
    /* leave the guest's vCPUs and the other NPU cores' workers theirs; past 4 a task's rows
     * are too few for the handoffs to pay */
    return n <= 2 ? 1 : n - 2 < 4 ? (uint32_t)(n - 2) : 4;
}
