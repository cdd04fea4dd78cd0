// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocket-infer: run a .tflite model with TFLite's C API, optionally through Mesa's Teflon
 * delegate (the external-delegate ABI of libteflon.so, i.e. the rocket NPU driver).
 *
 *   rocket-infer [-d DELEGATE.so] [-n INVOKES] [-o OUTDIR] MODEL.tflite INPUT.raw
 *
 * INPUT.raw holds the first input tensor's bytes (e.g. 320x320x3 uint8 RGB for MobileDet);
 * "random:SEED" fills it with reproducible pseudo-random bytes of the right size instead.
 * Writes OUTDIR/output-K.bin per output tensor and OUTDIR/summary.json: per-invoke times, the
 * outputs' shapes and quantisation, and for SSD post-processed models the detections.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tensorflow/lite/c/c_api.h>

typedef TfLiteDelegate *(*create_fn)(char **, char **, size_t, void (*)(const char *));

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

int main(int argc, char **argv)
{
    const char *delegate_path = NULL, *outdir = ".";
    int invokes = 1, opt;
    while ((opt = getopt(argc, argv, "d:n:o:")) != -1) {
        switch (opt) {
        case 'd': delegate_path = optarg; break;
        case 'n': invokes = atoi(optarg); break;
        case 'o': outdir = optarg; break;
        default:
            fprintf(stderr, "usage: rocket-infer [-d DELEGATE.so] [-n INVOKES] [-o OUTDIR] "
                            "MODEL.tflite INPUT.raw\n");
            return 2;
        }
    }
    if (optind + 2 != argc || invokes < 1 || invokes > 1000) {
        fprintf(stderr, "rocket-infer: need MODEL and INPUT (and 1..1000 invokes)\n");
        return 2;
    }
    TfLiteModel *model = TfLiteModelCreateFromFile(argv[optind]);
    if (!model) {
        fprintf(stderr, "rocket-infer: cannot load %s\n", argv[optind]);
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
    size_t in_len;
    void *in;
    TfLiteTensor *input = TfLiteInterpreterGetInputTensor(it, 0);
    if (!strncmp(argv[optind + 1], "random:", 7)) {
        uint32_t x = (uint32_t)strtoul(argv[optind + 1] + 7, NULL, 0) * 2654435761u + 1;
        in_len = TfLiteTensorByteSize(input);
        in = malloc(in_len);
        for (size_t i = 0; in && i < in_len; i++) {
            x = x * 1664525u + 1013904223u;   /* LCG: the same bytes on the host and guest */
            ((uint8_t *)in)[i] = (uint8_t)(x >> 24);
        }
    } else {
        in = read_file(argv[optind + 1], &in_len);
    }
    if (TfLiteTensorByteSize(input) != in_len) {
        fprintf(stderr, "rocket-infer: input has %zu bytes, the model wants %zu\n", in_len,
                TfLiteTensorByteSize(input));
        return 2;
    }
    double *ms = calloc((size_t)invokes, sizeof(double));
    for (int i = 0; i < invokes; i++) {
        TfLiteTensorCopyFromBuffer(input, in, in_len);
        t0 = now_ms();
        if (TfLiteInterpreterInvoke(it) != kTfLiteOk) {
            fprintf(stderr, "rocket-infer: invoke failed\n");
            return 1;
        }
        ms[i] = now_ms() - t0;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/summary.json", outdir);
    FILE *js = fopen(path, "w");
    if (!js) {
        perror(path);
        return 2;
    }
    fprintf(js, "{\"model\": \"%s\", \"delegate\": %s, \"setup_ms\": %.3f, \"invoke_ms\": [",
            argv[optind], delegate ? "true" : "false", t_setup);
    for (int i = 0; i < invokes; i++) {
        fprintf(js, "%s%.3f", i ? ", " : "", ms[i]);
    }
    fprintf(js, "],\n \"outputs\": [");
    int nout = TfLiteInterpreterGetOutputTensorCount(it);
    for (int k = 0; k < nout; k++) {
        const TfLiteTensor *t = TfLiteInterpreterGetOutputTensor(it, k);
        TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(t);
        snprintf(path, sizeof(path), "%s/output-%d.bin", outdir, k);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(TfLiteTensorData(t), 1, TfLiteTensorByteSize(t), f) !=
                      TfLiteTensorByteSize(t)) {
            perror(path);
            return 2;
        }
        fclose(f);
        fprintf(js, "%s{\"name\": \"%s\", \"type\": %d, \"scale\": %g, \"zero_point\": %d, "
                    "\"shape\": [", k ? ", " : "", TfLiteTensorName(t), TfLiteTensorType(t),
                q.scale, q.zero_point);
        for (int d = 0; d < TfLiteTensorNumDims(t); d++) {
            fprintf(js, "%s%d", d ? ", " : "", TfLiteTensorDim(t, d));
        }
        fprintf(js, "]}");
    }
    /* TFLite_Detection_PostProcess: boxes [1,N,4], classes [1,N], scores [1,N], count [1] */
    fprintf(js, "],\n \"detections\": [");
    if (nout == 4 && TfLiteTensorType(TfLiteInterpreterGetOutputTensor(it, 0)) == kTfLiteFloat32) {
        const float *box = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 0));
        const float *cls = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 1));
        const float *score = TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 2));
        int n = (int)*(const float *)TfLiteTensorData(TfLiteInterpreterGetOutputTensor(it, 3));
        for (int i = 0; i < n && i < 100; i++) {
            fprintf(js, "%s{\"class\": %d, \"score\": %.4f, \"box\": [%.4f, %.4f, %.4f, %.4f]}",
                    i ? ", " : "", (int)cls[i], score[i], box[4 * i], box[4 * i + 1],
                    box[4 * i + 2], box[4 * i + 3]);
        }
    }
    fprintf(js, "]}\n");
    fclose(js);
    printf("rocket-infer: %s, %d invoke(s), first %.1f ms, last %.1f ms%s\n", argv[optind],
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
