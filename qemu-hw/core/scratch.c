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
    struct rn_scratch *s = c->scratch;
    if (bytes > 4ull * RN_MAX_BUF_BYTES) {
        return NULL;
    }
    if (!s) {
        s = c->scratch = calloc(1, sizeof(*s));
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

void rn_core_trim(struct rn_core *c, size_t keep)
{
    for (int i = 0; c->scratch && i < RN_BUF_COUNT; i++) {
        if (c->scratch->size[i] > keep) {
            free(c->scratch->buf[i]);
            c->scratch->buf[i] = NULL;
            c->scratch->size[i] = 0;
        }
    }
}

void rn_core_destroy(struct rn_core *c)
{
    if (c->scratch) {
        for (int i = 0; i < RN_BUF_COUNT; i++) {
            free(c->scratch->buf[i]);
        }
        free(c->scratch);
        c->scratch = NULL;
    }
}
