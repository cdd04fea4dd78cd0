/*
 * The few GLib test functions the core's unit tests use, for builds without GLib (the arm64
 * cross build of scripts/test-arm64): TAP output like g_test_run's --tap, and any failed
 * assertion aborts the program with the expression and values on stderr.
 */
#ifndef ROCKETSIM_GLIB_SHIM_H
#define ROCKETSIM_GLIB_SHIM_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

typedef void (*GTestFunc)(void);

static struct {
    const char *path;
    GTestFunc fn;
} g_shim_tests[256];
static int g_shim_ntests;

static inline void g_test_init(int *argc, char ***argv, ...)
{
    (void)argc;
    (void)argv;
}

static inline void g_test_add_func(const char *path, GTestFunc fn)
{
    if (g_shim_ntests == (int)(sizeof(g_shim_tests) / sizeof(g_shim_tests[0]))) {
        abort();
    }
    g_shim_tests[g_shim_ntests].path = path;
    g_shim_tests[g_shim_ntests++].fn = fn;
}

static inline int g_test_run(void)
{
    printf("1..%d\n", g_shim_ntests);
    for (int i = 0; i < g_shim_ntests; i++) {
        fflush(stdout);
        g_shim_tests[i].fn();
        printf("ok %d %s\n", i + 1, g_shim_tests[i].path);
    }
    return 0;
}

static inline void *g_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        abort();
    }
    return p;
}

static inline void g_free(void *p)
{
    free(p);
}

/* GRand as a splitmix64 stream: other numbers than GLib's, the same use (test-elem). */
typedef struct {
    uint64_t s;
} GRand;
typedef int gboolean;

static inline GRand *g_rand_new_with_seed(uint32_t seed)
{
    GRand *r = g_malloc(sizeof(*r));
    r->s = seed;
    return r;
}

static inline void g_rand_free(GRand *r)
{
    g_free(r);
}

static inline uint32_t g_rand_int(GRand *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* [begin, end) */
static inline int32_t g_rand_int_range(GRand *r, int32_t begin, int32_t end)
{
    return begin + (int32_t)(g_rand_int(r) % (uint32_t)(end - begin));
}

static inline gboolean g_rand_boolean(GRand *r)
{
    return g_rand_int(r) & 1;
}

static inline double g_rand_double_range(GRand *r, double begin, double end)
{
    return begin + (end - begin) * (g_rand_int(r) / 4294967296.0);
}

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define g_shim_fail(...)                                                                      \
    do {                                                                                      \
        fflush(stdout);                                                                       \
        fprintf(stderr, "%s:%d: assertion failed: ", __FILE__, __LINE__);                     \
        fprintf(stderr, __VA_ARGS__);                                                         \
        fprintf(stderr, "\n");                                                                \
        abort();                                                                              \
    } while (0)

#define g_shim_cmp(type, fmt, a, op, b)                                                       \
    do {                                                                                      \
        type g_shim_a = (type)(a), g_shim_b = (type)(b);                                      \
        if (!(g_shim_a op g_shim_b)) {                                                        \
            g_shim_fail("%s %s %s (%" fmt " %s %" fmt ")", #a, #op, #b, g_shim_a, #op,        \
                        g_shim_b);                                                            \
        }                                                                                     \
    } while (0)

#define g_assert_cmpint(a, op, b) g_shim_cmp(int64_t, PRId64, a, op, b)
#define g_assert_cmpuint(a, op, b) g_shim_cmp(uint64_t, PRIu64, a, op, b)
#define g_assert_cmphex(a, op, b) g_shim_cmp(uint64_t, "#" PRIx64, a, op, b)
#define g_assert_cmpfloat(a, op, b) g_shim_cmp(double, "a", a, op, b)
#define g_assert_true(e)                                                                      \
    do {                                                                                      \
        if (!(e)) {                                                                           \
            g_shim_fail("%s", #e);                                                            \
        }                                                                                     \
    } while (0)
#define g_assert_false(e) g_assert_true(!(e))
#define g_assert_not_reached() g_shim_fail("code should not be reached")
#define g_printerr(...) fprintf(stderr, __VA_ARGS__)
#define g_error(...) g_shim_fail(__VA_ARGS__)
#define g_assert_null(e) g_assert_true((e) == NULL)
#define g_assert_nonnull(e) g_assert_true((e) != NULL)
#define g_assert_cmpstr(a, op, b)                                                             \
    do {                                                                                      \
        const char *g_shim_s = (a), *g_shim_t = (b);                                          \
        if (!(strcmp(g_shim_s, g_shim_t) op 0)) {                                             \
            g_shim_fail("%s %s %s (\"%s\" %s \"%s\")", #a, #op, #b, g_shim_s, #op, g_shim_t); \
        }                                                                                     \
    } while (0)
#define g_assert_cmpmem(a, la, b, lb)                                                         \
    do {                                                                                      \
        if ((size_t)(la) != (size_t)(lb) || memcmp((a), (b), (size_t)(la))) {                 \
            g_shim_fail("%s (%zu bytes) == %s (%zu bytes)", #a, (size_t)(la), #b,             \
                        (size_t)(lb));                                                        \
        }                                                                                     \
    } while (0)

#endif
