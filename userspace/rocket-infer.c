// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocket-infer: run a .tflite model with TFLite's C API, optionally through Mesa's Teflon
 * delegate (the external-delegate ABI of libteflon.so, i.e. the rocket NPU driver).
 *
 *   rocket-infer [-d DELEGATE.so] [-n INVOKES] [-o OUTDIR] [-l LABELS] [-k TOPK] [-c]
 *                MODEL.tflite INPUT [INPUT...]
 *
 * One INPUT per input tensor: a .png photo (decoded and resized to the tensor's HxW, RGB), a raw
 * file of the tensor's exact bytes, or "random:SEED" (reproducible bytes; a last random INPUT
 * also fills the remaining tensors, input k with SEED+k). The bytes fed are kept as
 * OUTDIR/input-K.bin. Writes OUTDIR/output-K.bin per output tensor and OUTDIR/summary.json: the
 * per-invoke times, the outputs' shapes and quantisation, the top-k of a classifier or the
 * detections of an SSD post-processed model, named from LABELS (one per line, '#' lines skipped).
 * -c (soak tests) compares every invoke's outputs with the first's, byte for byte: a line per
 * invoke on stdout, and summary.json's "invokes_differing" counts those that differ.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <tensorflow/lite/c/c_api.h>

#include "image.h"

typedef TfLiteDelegate *(*create_fn)(char **, char **, size_t, void (*)(const char *));

static const char *outdir = ".";

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void report(const char *msg)
{
    fprintf(stderr, "delegate: %s\n", msg);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf;
    if (!f || fseek(f, 0, SEEK_END)) {
        perror(path);
        exit(2);
    }
    *len = (size_t)ftell(f);
    rewind(f);
    buf = malloc(*len ? *len : 1);
    if (!buf || fread(buf, 1, *len, f) != *len) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return buf;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        perror(path);
        exit(2);
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* The bytes for input tensor k from its INPUT spec (see the header); exits on a mismatch. */
static void *input_bytes(const TfLiteTensor *t, const char *spec, int k)
{
    size_t want = TfLiteTensorByteSize(t), len;
    uint8_t *in;
    if (!strncmp(spec, "random:", 7)) {
        uint32_t x = ((uint32_t)strtoul(spec + 7, NULL, 0) + (uint32_t)k) * 2654435761u + 1;
        in = malloc(want ? want : 1);
        for (size_t i = 0; in && i < want; i++) {
            x = x * 1664525u + 1013904223u;   /* LCG: the same bytes on the host and guest */
            in[i] = (uint8_t)(x >> 24);
        }
        return in;
    }
    if (ends_with(spec, ".png")) {
        TfLiteType ty = TfLiteTensorType(t);
        struct rgb_image img;
        if (TfLiteTensorNumDims(t) != 4 || TfLiteTensorDim(t, 3) != 3 ||
            (ty != kTfLiteUInt8 && ty != kTfLiteInt8)) {
            fprintf(stderr, "rocket-infer: input %d (%s) is not an 8-bit NHWC RGB image\n", k,
                    TfLiteTensorName(t));
            exit(2);
        }
        if (image_load_png(spec, &img)) {
            exit(2);
        }
        in = malloc(want);
        image_resize(&img, in, TfLiteTensorDim(t, 2), TfLiteTensorDim(t, 1));
        for (size_t i = 0; ty == kTfLiteInt8 && i < want; i++) {
            in[i] ^= 0x80;   /* int8 models take pixel - 128 */
        }
        free(img.px);
        return in;
    }
    in = read_file(spec, &len);
    if (len != want) {
        fprintf(stderr, "rocket-infer: %s has %zu bytes, input %d (%s) wants %zu\n", spec, len,
                k, TfLiteTensorName(t), want);
        exit(2);
    }
    return in;
}

/* Labels, one per line; lines starting with '#' are comments. */
static char **load_labels(const char *path, int *n)
{
    size_t len;
    char *text = path ? read_file(path, &len) : NULL, **v = NULL, *save = NULL;
    *n = 0;
    if (!text) {
        return NULL;
    }
    text = realloc(text, len + 1);
    text[len] = 0;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (ln[0] == '#') {
            continue;
        }
        ln[strcspn(ln, "\r")] = 0;
        v = realloc(v, sizeof(*v) * (size_t)(*n + 1));
        v[(*n)++] = ln;
    }
    return v;
}

static void json_label(FILE *js, char **labels, int nlabels, int i)
{
    if (i >= 0 && i < nlabels) {
        fprintf(js, ", \"label\": \"");
        for (const char *c = labels[i]; *c; c++) {
            fprintf(js, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        }
        fprintf(js, "\"");
    }
}

/* A classifier's top-k: one 8-bit output of shape [1, N], dequantised. */
static void json_top(FILE *js, const TfLiteTensor *t, int topk, char **labels, int nlabels)
{
    size_t n = TfLiteTensorByteSize(t);
    TfLiteType ty = TfLiteTensorType(t);
    TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
    const uint8_t *u = TfLiteTensorData(t);
    char *taken = calloc(n, 1);
    for (int r = 0; r < topk && (size_t)r < n; r++) {
        int best = -1, bv = 0;
        for (size_t i = 0; i < n; i++) {
            int v = ty == kTfLiteInt8 ? (int8_t)u[i] : u[i];
            if (!taken[i] && (best < 0 || v > bv)) {
                best = (int)i;
                bv = v;
            }
        }
        taken[best] = 1;
        fprintf(js, "%s{\"index\": %d, \"score\": %.4f", r ? ", " : "", best,
                q.scale > 0 ? q.scale * (bv - q.zero_point) : bv);
        json_label(js, labels, nlabels, best);
        fprintf(js, "}");
    }
    free(taken);
}

/* TFLite_Detection_PostProcess: boxes [1,N,4], classes [1,N], scores [1,N], count [1] */
static void json_detections(FILE *js, const TfLiteInterpreter *it, char **labels, int nlabels)
{
    const float *box = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 0));
    const float *cls = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 1));
    const float *score = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 2));
    int n = (int)*(const float *)TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 3));
    for (int i = 0; i < n && i < 100; i++) {
        fprintf(js, "%s{\"class\": %d, \"score\": %.4f, \"box\": [%.4f, %.4f, %.4f, %.4f]",
                i ? ", " : "", (int)cls[i], score[i], box[4 * i], box[4 * i + 1],
                box[4 * i + 2], box[4 * i + 3]);
        json_label(js, labels, nlabels, (int)cls[i]);
        fprintf(js, "}");
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: rocket-infer [-d DELEGATE.so] [-n INVOKES] [-o OUTDIR] [-l LABELS] "
                    "[-k TOPK] [-c] MODEL.tflite INPUT [INPUT...]\n"
                    "  INPUT: photo.png | tensor.raw | random:SEED\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *delegate_path = NULL, *labels_path = NULL;
    int invokes = 1, topk = 5, check = 0, differing = 0, opt;
    while ((opt = getopt(argc, argv, "d:n:o:l:k:c")) != -1) {
        switch (opt) {
        case 'c': check = 1; break;
        case 'd': delegate_path = optarg; break;
        case 'n': invokes = atoi(optarg); break;
        case 'o': outdir = optarg; break;
        case 'l': labels_path = optarg; break;
        case 'k': topk = atoi(optarg); break;
        default: return usage();
        }
    }
    if (optind + 2 > argc || invokes < 1 || invokes > 1000 || topk < 1 || topk > 100) {
        fprintf(stderr, "rocket-infer: need MODEL and INPUT, 1..1000 invokes, 1..100 top-k\n");
        return usage();
    }
    const char *model_path = argv[optind];
    char **specs = argv + optind + 1;
    int nspecs = argc - optind - 1, nlabels;
    char **labels = load_labels(labels_path, &nlabels);
    TfLiteModel *model = TfLiteModelCreateFromFile(model_path);
    if (!model) {
        fprintf(stderr, "rocket-infer: cannot load %s\n", model_path);
        return 1;
    }
    TfLiteInterpreterOptions *opts = TfLiteInterpreterOptionsCreate();
    TfLiteInterpreterOptionsSetNumThreads(opts, 1);
    TfLiteDelegate *delegate = NULL;
    void *lib = NULL;
    if (delegate_path) {
        create_fn create;
        lib = dlopen(delegate_path, RTLD_NOW | RTLD_LOCAL);
        create = lib ? (create_fn)dlsym(lib, "tflite_plugin_create_delegate") : NULL;
        delegate = create ? create(NULL, NULL, 0, report) : NULL;
        if (!delegate) {
            fprintf(stderr, "rocket-infer: no delegate from %s: %s\n", delegate_path,
                    lib ? "create failed" : dlerror());
            return 1;
        }
        TfLiteInterpreterOptionsAddDelegate(opts, (void *)delegate);
    }
    double t0 = now_ms();
    TfLiteInterpreter *it = TfLiteInterpreterCreate(model, opts);
    if (!it || TfLiteInterpreterAllocateTensors(it) != kTfLiteOk) {
        fprintf(stderr, "rocket-infer: cannot create the interpreter\n");
        return 1;
    }
    double t_setup = now_ms() - t0;
    int nin = TfLiteInterpreterGetInputTensorCount(it);
    if (nspecs > nin || (nspecs < nin && strncmp(specs[nspecs - 1], "random:", 7))) {
        fprintf(stderr, "rocket-infer: the model has %d input(s), %d INPUT(s) given\n", nin,
                nspecs);
        return 2;
    }
    void **in = calloc((size_t)nin, sizeof(*in));
    char name[64];
    for (int k = 0; k < nin; k++) {
        TfLiteTensor *t = TfLiteInterpreterGetInputTensor(it, k);
        in[k] = input_bytes(t, specs[k < nspecs ? k : nspecs - 1], k);
        snprintf(name, sizeof(name), "input-%d.bin", k);
        write_file(name, in[k], TfLiteTensorByteSize(t));
    }
    double *ms = calloc((size_t)invokes, sizeof(double));
    int nout = TfLiteInterpreterGetOutputTensorCount(it);
    void **first = calloc((size_t)nout, sizeof(*first));
    for (int i = 0; i < invokes; i++) {
        for (int k = 0; k < nin; k++) {
            TfLiteTensor *t = TfLiteInterpreterGetInputTensor(it, k);
            TfLiteTensorCopyFromBuffer(t, in[k], TfLiteTensorByteSize(t));
        }
        t0 = now_ms();
        if (TfLiteInterpreterInvoke(it) != kTfLiteOk) {
            fprintf(stderr, "rocket-infer: invoke failed\n");
            return 1;
        }
        ms[i] = now_ms() - t0;
        if (check) {   /* every invoke's outputs against the first's */
            int same = 1;
            for (int k = 0; k < nout; k++) {
                const TfLiteTensor *t = TfLiteInterpreterGetOutputTensor(it, k);
                size_t n = TfLiteTensorByteSize(t);
                if (i == 0) {
                    first[k] = malloc(n ? n : 1);
                    memcpy(first[k], TfLiteTensorData(t), n);
                } else if (memcmp(first[k], TfLiteTensorData(t), n)) {
                    same = 0;
                }
            }
            differing += !same;
            printf("rocket-infer: invoke %d: %.1f ms, outputs %s\n", i, ms[i],
                   same ? "as invoke 0" : "DIFFER from invoke 0");
            fflush(stdout);
        }
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/summary.json", outdir);
    FILE *js = fopen(path, "w");
    if (!js) {
        perror(path);
        return 2;
    }
    fprintf(js, "{\"model\": \"%s\", \"delegate\": %s, \"setup_ms\": %.3f, \"invoke_ms\": [",
            model_path, delegate ? "true" : "false", t_setup);
    for (int i = 0; i < invokes; i++) {
        fprintf(js, "%s%.3f", i ? ", " : "", ms[i]);
    }
    fprintf(js, "],\n");
    if (check) {
        fprintf(js, " \"invokes_differing\": %d,\n", differing);
    }
    fprintf(js, " \"outputs\": [");
    for (int k = 0; k < nout; k++) {
        const TfLiteTensor *t = TfLiteInterpreterGetOutputTensor(it, k);
        TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
        snprintf(name, sizeof(name), "output-%d.bin", k);
        write_file(name, TfLiteTensorData(t), TfLiteTensorByteSize(t));
        fprintf(js, "%s{\"name\": \"%s\", \"type\": %d, \"scale\": %g, \"zero_point\": %d, "
                    "\"shape\": [", k ? ", " : "", TfLiteTensorName(t), TfLiteTensorType(t),
                q.scale, q.zero_point);
        for (int d = 0; d < TfLiteTensorNumDims(t); d++) {
            fprintf(js, "%s%d", d ? ", " : "", TfLiteTensorDim(t, d));
        }
        fprintf(js, "]}");
    }
    const TfLiteTensor *o0 = TfLiteInterpreterGetOutputTensor(it, 0);
    fprintf(js, "],\n \"detections\": [");
    if (nout == 4 && TfLiteTensorType(o0) == kTfLiteFloat32) {
        json_detections(js, it, labels, nlabels);
    }
    fprintf(js, "],\n \"top\": [");
    if (nout == 1 && TfLiteTensorNumDims(o0) == 2 &&
        (TfLiteTensorType(o0) == kTfLiteUInt8 || TfLiteTensorType(o0) == kTfLiteInt8)) {
        json_top(js, o0, topk, labels, nlabels);
    }
    fprintf(js, "]}\n");
    fclose(js);
    printf("rocket-infer: %s, %d invoke(s), first %.1f ms, last %.1f ms%s\n", model_path,
           invokes, ms[0], ms[invokes - 1], delegate ? " (Teflon)" : " (CPU)");
    TfLiteInterpreterDelete(it);
    if (delegate) {
        void (*destroy)(TfLiteDelegate *) =
            (void (*)(TfLiteDelegate *))dlsym(lib, "tflite_plugin_destroy_delegate");
        if (destroy) {
            destroy(delegate);
        }
    }
    TfLiteInterpreterOptionsDelete(opts);
    TfLiteModelDelete(model);
    return 0;
}
