// SPDX-License-Identifier: GPL-2.0-or-later
/* PNG decoding (libpng's simplified API) and a small resampler for model inputs. */
#include "image.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int image_load_png(const char *path, struct rgb_image *img)
{
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path)) {
        fprintf(stderr, "%s: not a readable PNG: %s\n", path, pi.message);
        return -1;
    }
    pi.format = PNG_FORMAT_RGB;   /* libpng converts grey, palette and alpha for us */
    if (pi.width == 0 || pi.height == 0 || pi.width > 16384 || pi.height > 16384) {
        fprintf(stderr, "%s: %ux%u is not a photo size this tool takes\n", path, pi.width,
                pi.height);
        png_image_free(&pi);
        return -1;
    }
    img->w = (int)pi.width;
    img->h = (int)pi.height;
    img->px = malloc(PNG_IMAGE_SIZE(pi));
    if (!img->px || !png_image_finish_read(&pi, NULL, img->px, 0, NULL)) {
        fprintf(stderr, "%s: cannot decode: %s\n", path, img->px ? pi.message : "out of memory");
        free(img->px);
        png_image_free(&pi);
        return -1;
    }
    return 0;
}

/* One output pixel's channel c, covering source span [x0, x1) x [y0, y1). */
static double sample(const struct rgb_image *s, double x0, double x1, double y0, double y1, int c)
{
    double cx = (x0 + x1) / 2 - 0.5, cy = (y0 + y1) / 2 - 0.5, acc = 0, wsum = 0;
    double rx = (x1 - x0) > 2 ? (x1 - x0) / 2 : 1, ry = (y1 - y0) > 2 ? (y1 - y0) / 2 : 1;
    /* a tent filter of radius max(1, scale/2): bilinear when enlarging, area-like when shrinking */
    for (int y = (int)floor(cy - ry); y <= (int)ceil(cy + ry); y++) {
        double wy = 1 - fabs(y - cy) / ry;
        if (wy <= 0) {
            continue;
        }
        int yy = y < 0 ? 0 : y >= s->h ? s->h - 1 : y;
        for (int x = (int)floor(cx - rx); x <= (int)ceil(cx + rx); x++) {
            double wx = 1 - fabs(x - cx) / rx;
            if (wx <= 0) {
                continue;
            }
            int xx = x < 0 ? 0 : x >= s->w ? s->w - 1 : x;
            acc += wx * wy * s->px[((size_t)yy * s->w + xx) * 3 + c];
            wsum += wx * wy;
        }
    }
    return wsum > 0 ? acc / wsum : 0;
}

void image_resize(const struct rgb_image *src, uint8_t *dst, int dw, int dh)
{
    double sx = (double)src->w / dw, sy = (double)src->h / dh;
    for (int y = 0; y < dh; y++) {
        for (int x = 0; x < dw; x++) {
            for (int c = 0; c < 3; c++) {
                double v = sample(src, x * sx, (x + 1) * sx, y * sy, (y + 1) * sy, c);
                dst[((size_t)y * dw + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
            }
        }
    }
}
