// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim run: boot the emulated RK3588 board (3 NPU cores) and run SSDLite MobileDet (or
 * MobileNetV1, YOLOX) through Mesa's Teflon delegate on the NPU, on a photo from Debian's
 * python3-skimage; print the detections (top-5, YOLOX's classes), the same model's answer from
 * TFLite's CPU kernels on the host (the reference), the guest's inference time and the cycle
 * model's NPU time; write the photo with the boxes; with --trace, one inference as a Perfetto
 * trace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>

#include "rocketsim.h"

static const struct { const char *name, *file; } MODELS[] = {
    { "mobiledet", "ssdlite_mobiledet_coco_qat_postprocess.tflite" },
    { "mobilenet", "mobilenet_v1_1.0_224_quant.tflite" },
    { "yolox", "yolox.tflite" },
};

#define NOT_SET G_MININT64
#define BOOT_TIMEOUT_S 900

void rs_run_defaults(struct rs_run_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->model = "mobiledet";
    o->image = "chelsea";
    o->cores = 3;
    o->clock = 200000000;
    o->invokes = 3;
    o->icount = -1;
    o->dma_bandwidth = NOT_SET;
    o->task_overhead = NOT_SET;
    o->score = 0.4;
}

static const char *model_file(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(MODELS); i++) {
        if (!strcmp(MODELS[i].name, name)) {
            return MODELS[i].file;
        }
    }
    return NULL;
}

/* ---- files ---- */

static void rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        GDir *d = g_dir_open(path, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
            g_autofree char *sub = g_build_filename(path, name, NULL);
            rm_rf(sub);
        }
        if (d) {
            g_dir_close(d);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static gboolean dir_is_empty(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    gboolean empty = !d || !g_dir_read_name(d);
    if (d) {
        g_dir_close(d);
    }
    return empty;
}

static void copy_or_die(const char *from, const char *to)
{
    g_autoptr(GError) err = NULL;
    if (!rs_copy_file(from, to, &err)) {
        rs_fail(1, "cannot copy %s to %s: %s", from, to, err->message);
    }
}

static void write_or_die(const char *path, const char *text)
{
    g_autoptr(GError) err = NULL;
    if (!g_file_set_contents(path, text, -1, &err)) {
        rs_fail(1, "cannot write %s", err->message);
    }
}

/* ---- the photo: build/photos/NAME.png, from Debian's python3-skimage ---- */

#define SKIMAGE_DATA "./usr/lib/python3/dist-packages/skimage/data/"

static char *skimage_deb(void)
{
    g_autofree char *fetch = rs_path("scripts/debian-fetch");
    const char *argv[] = { fetch, "debfile", "python3-skimage", NULL };
    char *out = NULL, *err = NULL;
    int rc = rs_run_capture(argv, &out, &err);
    if (rc != 0 || !*out) {
        g_autofree char *tail = rs_last_lines(err, 8, "    ");
        rs_fail(1, "cannot fetch Debian's python3-skimage (the photos): scripts/debian-fetch "
                   "failed (status %d):\n%s", rc, tail);
    }
    g_free(err);
    return out;
}

static char *skimage_photos(const char *deb)
{
    const char *argv[] = { "dpkg-deb", "-c", deb, NULL };
    g_autofree char *out = NULL;
    GString *names = g_string_new(NULL);
    if (rs_run_capture(argv, &out, NULL) == 0) {
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        for (char **l = lines; *l; l++) {
            const char *p = strstr(*l, SKIMAGE_DATA);
            if (p && g_str_has_suffix(*l, ".png") && !strchr(p + strlen(SKIMAGE_DATA), '/')) {
                p += strlen(SKIMAGE_DATA);
                g_string_append_printf(names, "%s%.*s", names->len ? ", " : "",
                                       (int)(strlen(p) - 4), p);
            }
        }
    }
    return g_string_free(names, FALSE);
}

/* dpkg-deb --fsys-tarfile DEB | tar -x -O MEMBER > dest, without a shell. */
static gboolean extract(const char *deb, const char *member, const char *dest)
{
    const char *a1[] = { "dpkg-deb", "--fsys-tarfile", deb, NULL };
    const char *a2[] = { "tar", "-x", "-O", member, NULL };
    g_autoptr(GSubprocessLauncher) l1 = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_autoptr(GSubprocessLauncher) l2 = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_autoptr(GError) err = NULL;
    g_autoptr(GSubprocess) p1 = rs_spawn_launcher(l1, a1, &err);
    if (!p1) {
        rs_exit_if_interrupted();
        rs_fail(1, "cannot run dpkg-deb: %s", err->message);
    }
    GInputStream *pipe = g_subprocess_get_stdout_pipe(p1);
    g_subprocess_launcher_take_stdin_fd(l2, dup(g_unix_input_stream_get_fd(
                                                G_UNIX_INPUT_STREAM(pipe))));
    g_subprocess_launcher_set_stdout_file_path(l2, dest);
    g_autoptr(GSubprocess) p2 = rs_spawn_launcher(l2, a2, &err);
    g_input_stream_close(pipe, NULL, NULL);
    int rc2 = p2 ? rs_wait(p2) : -1;
    int rc1 = rs_wait(p1);
    rs_exit_if_interrupted();
    return rc2 == 0 && (rc1 == 0 || rc1 == 128 + SIGPIPE);
}

static char *photo(const char *name)
{
    g_autofree char *dir = rs_path("build/photos");
    g_autofree char *file = g_strdup_printf("%s.png", name);
    char *path = g_build_filename(dir, file, NULL);
    if (rs_file_exists(path)) {
        return path;
    }
    g_autofree char *deb = skimage_deb();
    g_autofree char *member = g_strconcat(SKIMAGE_DATA, file, NULL);
    g_autofree char *tmp = g_strconcat(path, ".part", NULL);
    g_mkdir_with_parents(dir, 0755);
    if (!extract(deb, member, tmp) || g_file_test(tmp, G_FILE_TEST_IS_REGULAR) == FALSE) {
        g_unlink(tmp);
        g_autofree char *have = skimage_photos(deb);
        rs_fail(2, "Debian's python3-skimage has no photo '%s.png'; its photos: %s", name,
                *have ? have : "(none found)");
    }
    if (g_rename(tmp, path)) {
        rs_fail(1, "cannot rename %s: %s", tmp, g_strerror(errno));
    }
    return path;
}

/* ---- labels ---- */

/* COCO's 90 ids name 10 categories that have no annotations; the 80-class models skip them. */
static const char *const COCO_UNUSED[] = { "street sign", "hat", "shoe", "eye glasses", "plate",
                                           "mirror", "window", "desk", "door", "blender" };

static char *coco80(const char *coco)
{
    g_autofree char *text = rs_read_text(coco, NULL);
    if (!text) {
        rs_fail(1, "cannot read %s", coco);
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GString *s = g_string_new(NULL);
    guint n = g_strv_length(lines);
    if (n && !*lines[n - 1]) {
        n--;    /* the text's last newline */
    }
    for (guint i = 0; i < n; i++) {
        g_autofree char *name = g_strstrip(g_strdup(lines[i]));
        gboolean unused = FALSE;
        for (size_t k = 0; k < G_N_ELEMENTS(COCO_UNUSED); k++) {
            unused |= !strcmp(name, COCO_UNUSED[k]);
        }
        if (lines[i][0] != '#' && !unused) {
            g_string_append_printf(s, "%s%s", s->len ? "\n" : "", lines[i]);
        }
    }
    g_string_append_c(s, '\n');
    return g_string_free(s, FALSE);
}

static GPtrArray *read_labels(const char *path)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *text = rs_read_text(path, NULL);
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    guint n = g_strv_length(lines);
    if (n && !*lines[n - 1]) {
        n--;
    }
    for (guint i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strstrip(g_strdup(lines[i])));
    }
    return names;
}

/* ---- what rocket-infer found ---- */

static JsonObject *load_summary(const char *res, JsonNode **keep)
{
    g_autofree char *path = g_build_filename(res, "summary.json", NULL);
    g_autoptr(GError) err = NULL;
    *keep = rs_json_load(path, &err);
    if (!*keep) {
        rs_fail(1, "cannot read rocket-infer's summary: %s", err->message);
    }
    return json_node_get_object(*keep);
}

static JsonArray *jarr(JsonObject *o, const char *key)
{
    JsonNode *n = json_object_get_member(o, key);
    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static gint64 last_dim(JsonObject *output)
{
    JsonArray *shape = jarr(output, "shape");
    guint n = shape ? json_array_get_length(shape) : 0;
    return n ? json_array_get_int_element(shape, n - 1) : -1;
}

struct yolox_class {
    guint index;
    double score;
};

static gint by_score(gconstpointer a, gconstpointer b)
{
    const struct yolox_class *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score;
}

/*
 * YOLOX (Mesa's test model, 320x416; three heads [1, H, W, 85] at strides 8/16/32, uint8: 4 box
 * terms, objectness, 80 class scores, sigmoids applied): per class, objectness x class score
 * in float32 over every cell; a class is listed when a cell reaches the threshold, with its
 * head's best score (a later head that also reaches it gives the score, as
 * sim-tests/yolox.py's classes() does), best first.
 */
static GArray *yolox_classes(const char *res, JsonObject *summary, guint nclasses,
                             double threshold)
{
    GArray *found = g_array_new(FALSE, FALSE, sizeof(struct yolox_class));
    JsonArray *outs = jarr(summary, "outputs");
    const float thr = (float)threshold;
    for (guint k = 0; outs && k < json_array_get_length(outs); k++) {
        JsonObject *o = json_array_get_object_element(outs, k);
        float scale = (float)rs_jnum(o, "scale", 0);
        float zp = (float)rs_jnum(o, "zero_point", 0);
        g_autofree char *name = g_strdup_printf("output-%u.bin", k);
        g_autofree char *path = g_build_filename(res, name, NULL);
        gsize len = 0;
        g_autofree guint8 *q = (guint8 *)rs_read_text(path, &len);
        if (!q || last_dim(o) != 85 || len % 85) {
            rs_fail(1, "%s is not a YOLOX head", path);
        }
        size_t cells = len / 85;
        for (guint c = 0; c < 80 && c < nclasses; c++) {
            gboolean hit = FALSE;
            float best = -INFINITY;
            for (size_t i = 0; i < cells; i++) {
                const guint8 *cell = q + i * 85;
                float obj = ((float)cell[4] - zp) * scale;
                float cls = ((float)cell[5 + c] - zp) * scale;
                float s = obj * cls;
                hit |= s >= thr;
                best = MAX(best, s);
            }
            if (!hit) {
                continue;
            }
            guint j = 0;
            while (j < found->len && g_array_index(found, struct yolox_class, j).index != c) {
                j++;
            }
            struct yolox_class yc = { c, rs_round(best, 4) };
            if (j == found->len) {
                g_array_append_val(found, yc);
            } else {
                g_array_index(found, struct yolox_class, j).score = yc.score;
            }
        }
    }
    g_array_sort(found, by_score);   /* stable: equal scores keep their order */
    return found;
}

/*
 * Print what rocket-infer found in folder res: detections (also drawn into png), a classifier's
 * top-5 or YOLOX's classes. Returns the printed lines.
 */
static GPtrArray *show(const char *res, const char *photo_png, const char *png,
                       const char *labels, double score_min)
{
    JsonNode *keep;
    JsonObject *s = load_summary(res, &keep);
    GPtrArray *rows = g_ptr_array_new_with_free_func(g_free);
    JsonArray *outs = jarr(s, "outputs"), *dets = jarr(s, "detections"), *top = jarr(s, "top");
    guint ndets = dets ? json_array_get_length(dets) : 0;
    g_autofree char *thr = rs_py_float(score_min);
    if (outs && json_array_get_length(outs) &&
        last_dim(json_array_get_object_element(outs, 0)) == 85) {
        rs_step("YOLOX classes with objectness x class score >= %s:", thr);
        g_autoptr(GPtrArray) names = read_labels(labels);
        g_autoptr(GArray) found = yolox_classes(res, s, 80, score_min);
        for (guint i = 0; i < found->len; i++) {
            struct yolox_class *c = &g_array_index(found, struct yolox_class, i);
            g_autofree char *num = g_strdup_printf("%u", c->index);
            const char *name = c->index < names->len ? names->pdata[c->index] : num;
            g_ptr_array_add(rows, g_strdup_printf("%-14s %.2f", name, c->score));
        }
    } else if (ndets) {
        int w, h;
        g_autoptr(GError) err = NULL;
        if (!rs_png_size(photo_png, &w, &h, &err)) {
            rs_fail(1, "%s", err->message);
        }
        g_autoptr(GArray) boxes = g_array_new(FALSE, FALSE, sizeof(struct rs_box));
        for (guint i = 0; i < ndets; i++) {
            JsonObject *d = json_array_get_object_element(dets, i);
            double score = rs_jnum(d, "score", 0);
            JsonArray *b = jarr(d, "box");
            if (score < score_min || !b || json_array_get_length(b) != 4) {
                continue;
            }
            g_autofree char *cls = g_strdup_printf("%.0f", rs_jnum(d, "class", -1));
            const char *name = rs_jstr(d, "label", cls);
            double y0 = json_array_get_double_element(b, 0), x0 =
                json_array_get_double_element(b, 1);
            double y1 = json_array_get_double_element(b, 2), x1 =
                json_array_get_double_element(b, 3);
            struct rs_box box = { x0 * w, y0 * h, x1 * w, y1 * h,
                                  g_strdup_printf("%s %.2f", name, score) };
            g_ptr_array_add(rows, g_strdup_printf(
                "%-14s %.2f  box (x, y) %.0f,%.0f - %.0f,%.0f", name, score, box.x0, box.y0,
                box.x1, box.y1));
            g_array_append_val(boxes, box);
        }
        rs_step("%u detections with score >= %s:", boxes->len, thr);
        if (!rs_draw_boxes(photo_png, png, (struct rs_box *)(void *)boxes->data, (int)boxes->len,
                           &err)) {
            rs_fail(1, "%s", err->message);
        }
        for (guint i = 0; i < boxes->len; i++) {
            g_free(g_array_index(boxes, struct rs_box, i).text);
        }
    } else {
        rs_step("top-5:");
        for (guint i = 0; top && i < json_array_get_length(top); i++) {
            JsonObject *t = json_array_get_object_element(top, i);
            const char *label = rs_jstr(t, "label", NULL);
            if (label) {
                g_ptr_array_add(rows, g_strdup_printf("%-24s %.2f", label,
                                                      rs_jnum(t, "score", 0)));
            } else {
                g_ptr_array_add(rows, g_strdup_printf("%24.0f %.2f", rs_jnum(t, "index", 0),
                                                      rs_jnum(t, "score", 0)));
            }
        }
    }
    for (guint i = 0; i < rows->len && !rs_quiet; i++) {
        printf("    %s\n", (char *)rows->pdata[i]);
    }
    if (ndets) {
        g_autofree char *shown = rs_display_path(png);
        rs_step("annotated image: %s", shown);
    }
    json_node_unref(keep);
    return rows;
}

static gboolean same_rows(GPtrArray *a, GPtrArray *b)
{
    if (a->len != b->len) {
        return FALSE;
    }
    for (guint i = 0; i < a->len; i++) {
        if (strcmp(a->pdata[i], b->pdata[i])) {
            return FALSE;
        }
    }
    return TRUE;
}

/* ---- the run ---- */

static void boot_failed(const struct rs_boot *r, const char *out)
{
    g_autofree char *console = rs_last_lines(r->console->str, 25, "    ");
    g_autofree char *log = rs_last_lines(r->log, 25, "    ");
    g_autofree char *why = NULL;
    if (r->timed_out) {
        why = g_strdup_printf("the guest did not finish within %d s; QEMU was stopped",
                              BOOT_TIMEOUT_S);
    } else if (r->status > 0) {
        why = g_strdup_printf("the guest's run.sh (rocket-infer) exited with status %d",
                              r->status);
    } else if (r->ready < 0) {
        why = g_strdup_printf("the guest never got to the NPU driver (QEMU exited with "
                              "status %d)", r->qemu_rc);
    } else {
        why = g_strdup_printf("the guest powered off without reporting its run's status "
                              "(QEMU exited with status %d)", r->qemu_rc);
    }
    fflush(stdout);
    fprintf(stderr, "%s: the guest run failed: %s\n", rs_prog, why);
    fprintf(stderr, "the guest's console (QEMU's output), last lines:\n%s",
            *console ? console : "    (nothing)\n");
    if (*log) {
        fprintf(stderr, "the guest's run.sh output (%s/run.sh.log), last lines:\n%s", out, log);
    }
}

int rs_run(const struct rs_run_opts *a, struct rs_run_result *res)
{
    memset(res, 0, sizeof(*res));
    const char *file = model_file(a->model);
    g_autofree char *host_infer = rs_path("build/host/rocket-infer");
    rs_board_check();
    rs_need_file(host_infer, "build the guest programs first: `make guest` (or `make run`)");

    g_autofree char *fetch = rs_path("scripts/fetch-models");
    const char *fargv[] = { fetch, NULL };
    g_autofree char *models = NULL, *ferr = NULL;
    int rc = rs_run_capture(fargv, &models, &ferr);
    if (rc != 0 || !*models) {
        g_autofree char *tail = rs_last_lines(ferr, 8, "    ");
        rs_fail(1, "the models are not available: scripts/fetch-models failed (status %d):\n%s",
                rc, tail);
    }
    g_autofree char *model_path = g_build_filename(models, file, NULL);
    rs_need_file(model_path, "scripts/fetch-models did not provide it (delete its folder and "
                             "run again to fetch the models anew)");

    g_autofree char *png = photo(a->image);
    g_autofree char *out = g_canonicalize_filename(a->out, NULL);
    g_autofree char *marker = g_build_filename(out, "run.sh", NULL);
    if (g_file_test(out, G_FILE_TEST_EXISTS) && !g_file_test(out, G_FILE_TEST_IS_DIR)) {
        rs_fail(2, "--out %s is a file, not a folder", a->out);
    }
    if (g_file_test(out, G_FILE_TEST_IS_DIR) && !dir_is_empty(out) && !rs_file_exists(marker)) {
        rs_fail(2, "%s is not empty and not a previous run's folder; not emptying it", out);
    }
    rm_rf(out);
    g_autofree char *npu_dir = g_build_filename(out, "npu", NULL);
    if (g_mkdir_with_parents(npu_dir, 0755)) {
        rs_fail(1, "cannot create %s: %s", npu_dir, g_strerror(errno));
    }
    int w, h;
    g_autoptr(GError) err = NULL;
    if (!rs_png_size(png, &w, &h, &err)) {
        rs_fail(1, "%s", err->message);
    }
    rs_step("input: %s.png %dx%d, resized by rocket-infer to the model", a->image, w, h);
    g_autofree char *input = g_build_filename(out, "input.png", NULL);
    g_autofree char *labels = g_build_filename(out, "labels.txt", NULL);
    g_autofree char *model = g_build_filename(out, "model.tflite", NULL);
    copy_or_die(png, input);
    if (!strcmp(a->model, "mobilenet")) {
        g_autofree char *l = g_build_filename(models, "labels_mobilenet_quant_v1_224.txt", NULL);
        copy_or_die(l, labels);
    } else {
        g_autofree char *coco = rs_path("userspace/coco-labels.txt");
        if (!strcmp(a->model, "yolox")) {   /* 80 classes, not the 90 ids */
            g_autofree char *text = coco80(coco);
            write_or_die(labels, text);
        } else {
            copy_or_die(coco, labels);
        }
    }
    copy_or_die(model_path, model);
    g_autofree char *script = g_strdup_printf(
        "%srocket-infer -d /usr/lib/teflon/libteflon.so -n %d -o /host/npu -l /host/labels.txt "
        "/host/model.tflite /host/input.png\n",
        a->capture ? "ROCKET_CAPTURE_DIR=/host/capture LD_PRELOAD=/usr/bin/rocket-capture.so "
                   : "", a->invokes);
    write_or_die(marker, script);
    rs_step("booting the emulated board: %d NPU cores at %.0f MHz, %d invokes of %s through "
            "Teflon", a->cores, (double)a->clock / 1e6, a->invokes, file);

    g_autofree char *qlog = g_build_filename(out, "qemu.log", NULL);
    g_autoptr(GPtrArray) extra = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(extra, g_strdup("-global"));
    g_ptr_array_add(extra, g_strdup_printf("rk3588-npu.clock-frequency=%" G_GINT64_FORMAT,
                                           a->clock));
    if (a->dma_bandwidth != NOT_SET) {
        g_ptr_array_add(extra, g_strdup("-global"));
        g_ptr_array_add(extra, g_strdup_printf("rk3588-npu.dma-bandwidth=%" G_GINT64_FORMAT,
                                               a->dma_bandwidth));
    }
    if (a->task_overhead != NOT_SET) {
        g_ptr_array_add(extra, g_strdup("-global"));
        g_ptr_array_add(extra, g_strdup_printf("rk3588-npu.task-overhead=%" G_GINT64_FORMAT,
                                               a->task_overhead));
    }
    const char *log_args[] = { "-D", qlog, "-d", "guest_errors,unimp" };
    for (size_t i = 0; i < G_N_ELEMENTS(log_args); i++) {
        g_ptr_array_add(extra, g_strdup(log_args[i]));
    }
    /* the NPU's trace events: the NPU time, the timeline and the Perfetto trace */
    const char *events[] = { "kick", "task", "quirk", "done", "suspend", "rerun", "abort" };
    for (size_t i = 0; i < G_N_ELEMENTS(events); i++) {
        g_ptr_array_add(extra, g_strdup("-trace"));
        g_ptr_array_add(extra, g_strdup_printf("rk3588_npu_%s", events[i]));
    }
    struct rs_board b = { .cores = a->cores, .mem = "2G", .share = out, .icount = a->icount,
                          .smp = a->smp, .threads = a->threads, .extra = extra };
    struct rs_boot r;
    rs_boot(&b, "run.sh", BOOT_TIMEOUT_S, &r);
    if (r.status != 0) {
        boot_failed(&r, out);
        rs_boot_clear(&r);
        return 1;
    }
    rs_step("done in %.1f s wall (driver ready %.1f s after start)", r.wall, r.ready);
    rs_boot_clear(&r);

    JsonNode *keep;
    JsonObject *s = load_summary(npu_dir, &keep);
    JsonArray *inv = jarr(s, "invoke_ms");
    if (!inv || !json_array_get_length(inv)) {
        rs_fail(1, "rocket-infer's summary has no invoke times");
    }
    res->invokes = (int)json_array_get_length(inv);
    res->invoke_ms = g_new0(double, (gsize)res->invokes);
    for (int i = 0; i < res->invokes; i++) {
        res->invoke_ms[i] = json_array_get_double_element(inv, (guint)i);
    }
    json_node_unref(keep);
    if (!rs_npu_log_read(qlog, &res->npu, &err)) {
        rs_fail(1, "cannot read QEMU's log: %s", err->message);
    }
    res->out = g_strdup(out);

    g_autofree char *det_png = g_build_filename(out, "detections.png", NULL);
    g_autoptr(GPtrArray) npu_rows = show(npu_dir, png, det_png, labels, a->score);
    /* the reference: TFLite's CPU kernels on the host, same model, same input bytes */
    g_autofree char *cpu_dir = g_build_filename(out, "cpu", NULL);
    g_autofree char *in0 = g_build_filename(npu_dir, "input-0.bin", NULL);
    g_mkdir_with_parents(cpu_dir, 0755);
    const char *cargv[] = { host_infer, "-o", cpu_dir, "-l", labels, model, in0, NULL };
    g_autofree char *cerr = NULL;
    rc = rs_run_capture(cargv, NULL, &cerr);
    if (rc != 0) {
        g_autofree char *tail = rs_last_lines(cerr, 10, "    ");
        rs_fail(1, "the CPU reference (build/host/rocket-infer) failed with status %d:\n%s", rc,
                tail);
    }
    rs_step("CPU reference (TFLite on the host, same input):");
    g_autofree char *cpu_png = g_build_filename(cpu_dir, "detections.png", NULL);
    g_autoptr(GPtrArray) cpu_rows = show(cpu_dir, png, cpu_png, labels, a->score);
    if (same_rows(npu_rows, cpu_rows)) {
        rs_step("the NPU and the CPU reference agree on every line above");
    }
    if (a->capture) {
        g_autofree char *cap = g_build_filename(out, "capture", NULL);
        g_autofree char *shown = rs_display_path(cap);
        rs_step("NPU jobs captured in %s/; replay with build/qemu-hw/tools/rknpu-run", shown);
    }
    int64_t npu_sum = 0;
    guint nd = res->npu.npu_ns->len;
    for (guint i = 0; i < nd; i++) {
        npu_sum += g_array_index(res->npu.npu_ns, int64_t, i);
    }
    g_autofree char *clock = a->icount >= 0 ? g_strdup_printf("-icount shift=%d", a->icount)
                                            : g_strdup("TCG-emulated CPU");
    rs_step("inference: guest %.1f ms per invoke (%s, first %.1f ms); NPU time from the cycle "
            "model %.2f ms per invoke over %d tasks at %.0f MHz",
            res->invoke_ms[res->invokes - 1], clock, res->invoke_ms[0],
            (double)npu_sum / res->invokes / 1e6, (int)nd / res->invokes,
            (double)a->clock / 1e6);
    if (a->trace) {
        struct rs_trace_info ti = { .model = a->model, .image = a->image, .cores = a->cores,
                                    .invokes = res->invokes, .clock_hz = a->clock,
                                    .invoke_ms = res->invoke_ms };
        if (!rs_trace_write(a->trace, &res->npu, &ti, &err)) {
            rs_fail(1, "cannot write the trace: %s", err->message);
        }
        g_autofree char *shown = rs_display_path(a->trace);
        rs_step("Perfetto trace of the last invoke: %s (open it in https://ui.perfetto.dev)",
                shown);
    }
    return 0;
}

void rs_run_result_clear(struct rs_run_result *res)
{
    g_free(res->out);
    g_free(res->invoke_ms);
    rs_npu_log_clear(&res->npu);
    memset(res, 0, sizeof(*res));
}

/* ---- options ---- */

static gboolean valid_name(const char *s)
{
    if (!*s) {
        return FALSE;
    }
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && *s != '_' && *s != '-') {
            return FALSE;
        }
    }
    return TRUE;
}

int cmd_run(int argc, char **argv)
{
    struct rs_run_opts o;
    rs_run_defaults(&o);
    char *model = NULL, *image = NULL, *out = NULL, *trace = NULL;
    int icount = G_MININT, cores = o.cores, invokes = o.invokes, smp = 0, threads = 0;
    gint64 clock = o.clock, dma = NOT_SET, overhead = NOT_SET;
    double score = o.score;
    gboolean capture = FALSE;
    GOptionEntry entries[] = {
        { "model", 0, 0, G_OPTION_ARG_STRING, &model,
          "mobiledet (SSDLite MobileDet, the default), mobilenet (MobileNetV1, top-5) or yolox",
          "NAME" },
        { "image", 0, 0, G_OPTION_ARG_STRING, &image,
          "python3-skimage photo: chelsea (default), astronaut, coffee, motorcycle_left, ...",
          "NAME" },
        { "cores", 0, 0, G_OPTION_ARG_INT, &cores, "NPU cores, 1 to 3 (default 3)", "N" },
        { "smp", 0, 0, G_OPTION_ARG_INT, &smp,
          "guest CPUs, 1 to 8 (default: 1 on a host with 2 CPUs or fewer, else 2)", "N" },
        { "threads", 0, 0, G_OPTION_ARG_INT, &threads,
          "host threads per NPU task, 1 to 16 (default: 1 on a host with 2 CPUs or fewer, else "
          "up to 4); the bytes are the same for any number", "N" },
        { "clock", 0, 0, G_OPTION_ARG_INT64, &clock, "NPU clock in Hz (default 200000000)",
          "HZ" },
        { "dma-bandwidth", 0, 0, G_OPTION_ARG_INT64, &dma,
          "the cycle model's DRAM bandwidth per core", "BYTES_PER_S" },
        { "task-overhead", 0, 0, G_OPTION_ARG_INT64, &overhead,
          "the cycle model's fixed cost per task", "CYCLES" },
        { "invokes", 0, 0, G_OPTION_ARG_INT, &invokes, "inferences, 1 to 1000 (default 3)", "N" },
        { "icount", 0, 0, G_OPTION_ARG_INT, &icount,
          "run the guest CPU at 2^SHIFT ns per instruction (-icount, 0 to 10), so that the "
          "guest's timing includes the NPU's modelled time", "SHIFT" },
        { "capture", 0, 0, G_OPTION_ARG_NONE, &capture,
          "record every NPU job in OUT/capture/ (rocket-capture.so), for rknpu-run", NULL },
        { "score", 0, 0, G_OPTION_ARG_DOUBLE, &score,
          "detection score threshold, 0 to 1 (default 0.4)", "S" },
        { "out", 0, 0, G_OPTION_ARG_FILENAME, &out,
          "folder for the inputs, outputs and pictures, emptied first (default build/run)",
          "DIR" },
        { "trace", 0, 0, G_OPTION_ARG_FILENAME, &trace,
          "write the last inference as a Chrome JSON trace for Perfetto's UI", "FILE" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx,
        "Boot the emulated RK3588 board and run a model through Mesa's Teflon on the NPU;\n"
        "print its answer, the host CPU reference's, the guest's inference time and the cycle\n"
        "model's NPU time, and draw the boxes into OUT/detections.png.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        rs_usage_error(ctx, "%s", err->message);
    }
    if (argc > 1) {
        rs_usage_error(ctx, "unexpected argument '%s'", argv[1]);
    }
    if (model) {
        o.model = model;
    }
    if (!model_file(o.model)) {
        rs_usage_error(ctx, "unknown model '%s'; --model takes mobiledet, mobilenet or yolox",
                       o.model);
    }
    if (image) {
        o.image = image;
    }
    if (!valid_name(o.image)) {
        rs_usage_error(ctx, "--image takes the name of a python3-skimage photo (chelsea, "
                            "astronaut, coffee, ...), not '%s'", o.image);
    }
    if (cores < 1 || cores > 3) {
        rs_usage_error(ctx, "--cores must be 1, 2 or 3 (the RK3588 has 3 NPU cores), not %d",
                       cores);
    }
    if (smp && (smp < 1 || smp > 8)) {
        rs_usage_error(ctx, "--smp takes 1 to 8 guest CPUs, not %d", smp);
    }
    if (threads && (threads < 1 || threads > 16)) {
        rs_usage_error(ctx, "--threads takes 1 to 16 host threads, not %d", threads);
    }
    if (clock < 1) {
        rs_usage_error(ctx, "--clock must be a positive frequency in Hz, not %" G_GINT64_FORMAT,
                       clock);
    }
    if (dma != NOT_SET && dma < 1) {
        rs_usage_error(ctx, "--dma-bandwidth must be positive (bytes per second)");
    }
    if (overhead != NOT_SET && overhead < 0) {
        rs_usage_error(ctx, "--task-overhead must be 0 or more cycles");
    }
    if (invokes < 1 || invokes > 1000) {
        rs_usage_error(ctx, "--invokes must be 1 to 1000, not %d", invokes);
    }
    if (icount != G_MININT && (icount < 0 || icount > 10)) {
        rs_usage_error(ctx, "--icount takes a shift of 0 to 10 (2^SHIFT ns per instruction), "
                            "not %d", icount);
    }
    if (!(score >= 0 && score <= 1)) {
        rs_usage_error(ctx, "--score must be 0 to 1");
    }
    g_autofree char *default_out = rs_path("build/run");
    o.cores = cores;
    o.smp = smp;
    o.threads = threads;
    o.clock = clock;
    o.dma_bandwidth = dma;
    o.task_overhead = overhead;
    o.invokes = invokes;
    o.icount = icount == G_MININT ? -1 : icount;
    o.score = score;
    o.capture = capture;
    o.out = out ? out : default_out;
    o.trace = trace;
    struct rs_run_result res;
    int rc = rs_run(&o, &res);
    rs_run_result_clear(&res);
    g_free(model);
    g_free(image);
    g_free(out);
    g_free(trace);
    return rc;
}
