// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rocketsim: pictures, with cairo. The photo with the detections (a 3-pixel red box per
 * detection, its label and score in white on a red tab at the box's top-left corner, kept inside
 * the picture), and timing's timeline of one inference.
 */
#include <math.h>

#include <cairo.h>

#include "rocketsim.h"

#define FONT "DejaVu Sans"

static gboolean cairo_ok(cairo_status_t st, const char *what, const char *path, GError **err)
{
    if (st == CAIRO_STATUS_SUCCESS) {
        return TRUE;
    }
    g_set_error(err, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot %s %s: %s", what, path,
                st == CAIRO_STATUS_FILE_NOT_FOUND ? "no such file"
                : st == CAIRO_STATUS_READ_ERROR ? "not a PNG picture"
                : cairo_status_to_string(st));
    return FALSE;
}

static cairo_surface_t *load_png(const char *png, GError **err)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(png);
    if (!cairo_ok(cairo_surface_status(s), "read", png, err)) {
        cairo_surface_destroy(s);
        return NULL;
    }
    return s;
}

gboolean rs_png_size(const char *png, int *w, int *h, GError **err)
{
    cairo_surface_t *s = load_png(png, err);
    if (!s) {
        return FALSE;
    }
    *w = cairo_image_surface_get_width(s);
    *h = cairo_image_surface_get_height(s);
    cairo_surface_destroy(s);
    return TRUE;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

gboolean rs_draw_boxes(const char *in_png, const char *out_png, const struct rs_box *boxes,
                       int n, GError **err)
{
    cairo_surface_t *photo = load_png(in_png, err);
    if (!photo) {
        return FALSE;
    }
    int W = cairo_image_surface_get_width(photo), H = cairo_image_surface_get_height(photo);
    /* RGB, like the photo decoded for the model: any alpha is dropped, not blended */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_surface(cr, photo, 0, 0);
    cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
    cairo_paint(cr);
    cairo_set_operator(cr, CAIRO_OPERATOR_OVER);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    const int width = 3;
    for (int i = 0; i < n; i++) {
        /* pixel edges as PIL's rectangle(outline, width=3) took them: the outline inside the box,
         * x0..x1 inclusive */
        double x0 = (int)boxes[i].x0, y0 = (int)boxes[i].y0;
        double x1 = (int)boxes[i].x1, y1 = (int)boxes[i].y1;
        double bw = x1 - x0 + 1, bh = y1 - y0 + 1;
        cairo_set_source_rgb(cr, 1, 0, 0);
        cairo_rectangle(cr, x0, y0, bw, width);
        cairo_rectangle(cr, x0, y1 - width + 1, bw, width);
        cairo_rectangle(cr, x0, y0, width, bh);
        cairo_rectangle(cr, x1 - width + 1, y0, width, bh);
        cairo_fill(cr);
    }
    /* labels after all boxes, so that no box crosses a label */
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 13);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, boxes[i].text, &te);
        double tw = ceil(te.x_advance) + 8, th = ceil(fe.ascent + fe.descent) + 4;
        double x = clamp((int)boxes[i].x0, 0, MAX(0, W - tw));
        double y = clamp((int)boxes[i].y0, 0, MAX(0, H - th));
        cairo_set_source_rgb(cr, 0.85, 0, 0);
        cairo_rectangle(cr, x, y, tw, th);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_move_to(cr, x + 4, y + 2 + fe.ascent);
        cairo_show_text(cr, boxes[i].text);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(photo);
    cairo_surface_flush(s);
    gboolean ok = cairo_ok(cairo_surface_write_to_png(s, out_png), "write", out_png, err);
    cairo_surface_destroy(s);
    return ok;
}

static void text_at(cairo_t *cr, double x, double top, const char *text)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    cairo_move_to(cr, x, top + fe.ascent);
    cairo_show_text(cr, text);
}

gboolean rs_draw_timeline(const char *out_png, const char *title, const int64_t *spans,
                          int nspans, GError **err)
{
    const int w = 1200, h = 120, x0 = 10;
    int64_t t0 = nspans ? spans[0] : 0, t1 = nspans ? spans[2 * nspans - 1] : 1, busy = 0;
    double scale = (double)(w - 2 * x0) / (double)MAX(1, t1 - t0);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 225 / 255.0, 225 / 255.0, 225 / 255.0);
    cairo_rectangle(cr, x0, 40, w - 2 * x0, 40);
    cairo_fill(cr);
    for (int i = 0; i < nspans; i++) {
        double a = x0 + (double)(spans[2 * i] - t0) * scale;
        double b = x0 + (double)(spans[2 * i + 1] - t0) * scale;
        cairo_set_source_rgb(cr, 40 / 255.0, 160 / 255.0, 60 / 255.0);
        cairo_rectangle(cr, a, 40, MAX(b - a, 0.5), 40);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 70 / 255.0, 20 / 255.0);   /* the kick */
        cairo_rectangle(cr, a, 40, 1, 40);
        cairo_fill(cr);
        busy += spans[2 * i + 1] - spans[2 * i];
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    g_autofree char *head = g_strdup_printf(
        "%s: %d NPU tasks, NPU busy (green) %.2f ms of %.2f ms from first kick to last "
        "interrupt (guest virtual time)", title, nspans, (double)busy / 1e6,
        (double)(t1 - t0) / 1e6);
    text_at(cr, x0, 12, head);
    text_at(cr, x0, 88, "0 ms");
    g_autofree char *end = g_strdup_printf("%.2f ms", (double)(t1 - t0) / 1e6);
    cairo_text_extents_t te;
    cairo_text_extents(cr, end, &te);
    text_at(cr, w - x0 - te.x_advance, 88, end);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    gboolean ok = cairo_ok(cairo_surface_write_to_png(s, out_png), "write", out_png, err);
    cairo_surface_destroy(s);
    return ok;
}
