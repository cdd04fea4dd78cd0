/* Reusable, bounded work buffers of the pipeline. */
#include <stdlib.h>

#include "hwchoices.h"
#include "internal.h"

struct rn_scratch {
    void *buf[RN_BUF_COUNT];
    size_t size[RN_BUF_COUNT];
};

void *rn_scratch(struct rn_core *c, enum rn_buf which, size_t bytes)
{
    return rn_scratch_in(&c->scratch, which, bytes);
}

void *rn_scratch_in(struct rn_scratch **owner, enum rn_buf which, size_t bytes)
{
    struct rn_scratch *s = *owner;
    if (bytes > 4ull * RN_MAX_BUF_BYTES) {
        return NULL;
    }
    if (!s) {
        s = *owner = calloc(1, sizeof(*s));
        if (!s) {
            return NULL;
        }
    }
    if (s->size[which] < bytes || !s->buf[which]) {
        size_t want = (bytes + 4095) & ~(size_t)4095;
        void *p = NULL;
        free(s->buf[which]);
        s->buf[which] = NULL;
        s->size[which] = 0;
        if (posix_memalign(&p, 64, want ? want : 64)) {
            return NULL;
        }
        s->buf[which] = p;
        s->size[which] = want;
    }
    return s->buf[which];
}

void rn_scratch_trim(struct rn_scratch *s, size_t keep)
{
    for (int i = 0; s && i < RN_BUF_COUNT; i++) {
        if (s->size[i] > keep) {
            free(s->buf[i]);
            s->buf[i] = NULL;
            s->size[i] = 0;
        }
    }
}

void rn_scratch_free(struct rn_scratch **owner)
{
    rn_scratch_trim(*owner, 0);
    free(*owner);
    *owner = NULL;
}

void rn_core_trim(struct rn_core *c, size_t keep)
{
    rn_scratch_trim(c->scratch, keep);
    rn_pool_trim(c, keep);
}

void rn_core_destroy(struct rn_core *c)
{
    rn_pool_destroy(c);
    rn_scratch_free(&c->scratch);
}
