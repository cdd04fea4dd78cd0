/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Photos as model inputs: decode a PNG to RGB and resize it to the input tensor's size. */
#ifndef ROCKETSIM_IMAGE_H
#define ROCKETSIM_IMAGE_H

#include <stdint.h>

struct rgb_image {
    int w, h;
    uint8_t *px;   /* w*h*3, rows top to bottom */
};

/* 0 on success; on failure prints why (with the path) and returns -1. */
int image_load_png(const char *path, struct rgb_image *img);

/*
 * Resample src to dw x dh into dst (dw*dh*3 bytes). Bilinear with half-pixel centres, averaged
 * over the covered source pixels when shrinking by more than 2x, so that small inputs do not alias.
 */
void image_resize(const struct rgb_image *src, uint8_t *dst, int dw, int dh);

#endif
