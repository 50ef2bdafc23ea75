/* The im2col matrix of one image for a 2-D convolution (ONNX Conv: zero padding, strides,
 * dilations), in parallel over its rows: row (c, i, j) holds, for every output pixel
 * (y, x) in order, input[c][y * sh + i * dh - pt][x * sw + j * dw - pl], or 0 outside. */
#include <string.h>

#include "native.h"

/* out[x] = src[2 * x] for x in [lo, hi]; src[2 * x + 1] must be readable up to `end`. */
#ifdef FERRY_X86
TARGET static void take_even(float *out, const float *src, int lo, int hi, int end)
{
    int x = lo;
    for (; x + 8 <= hi + 1 && 2 * (x + 8) <= end; x += 8) {
        __m256 a = _mm256_loadu_ps(src + 2 * x), b = _mm256_loadu_ps(src + 2 * x + 8);
        __m256 even = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
        _mm256_storeu_ps(out + x, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8)));
    }
    for (; x <= hi; ++x)
        out[x] = src[2 * x];
}
#else
static void take_even(float *out, const float *src, int lo, int hi, int end)
{
    (void)end;
    for (int x = lo; x <= hi; ++x)
        out[x] = src[2 * x];
}
#endif

static void fill_row(void *ctx, int row, int slot)
{
    (void)slot;
    const Window2d *a = ctx;
    const int taps = a->kh * a->kw, c = row / taps, i = (row % taps) / a->kw, j = row % a->kw;
    const float *plane = a->x + (size_t)c * a->h * a->w;
    float *out = a->out + (size_t)row * a->oh * a->ow;
    const int shift = j * a->dw - a->pl; /* input column = x * sw + shift */
    int lo = shift >= 0 ? 0 : (-shift + a->sw - 1) / a->sw;            /* first x inside */
    int hi = a->w - 1 - shift < 0 ? -1 : (a->w - 1 - shift) / a->sw;  /* last x inside */
    if (hi > a->ow - 1)
        hi = a->ow - 1;
    for (int y = 0; y < a->oh; ++y, out += a->ow) {
        const int iy = (a->row0 + y) * a->sh + i * a->dh - a->pt;
        if (iy < 0 || iy >= a->h || lo > hi) {
            memset(out, 0, sizeof(float) * a->ow);
            continue;
        }
        const float *src = plane + (size_t)iy * a->w + shift;
        memset(out, 0, sizeof(float) * lo);
        if (a->sw == 1)
            memcpy(out + lo, src + lo, sizeof(float) * (hi - lo + 1));
        else if (a->sw == 2) /* ResNet's stems and downsampling; `end`: the row's end */
            take_even(out, src, lo, hi, a->w - shift);
        else
            for (int x = lo; x <= hi; ++x)
                out[x] = src[(size_t)x * a->sw];
        memset(out + hi + 1, 0, sizeof(float) * (a->ow - 1 - hi));
    }
}

int im2col(const Window2d *a, int threads)
{
    const int rows = a->c * a->kh * a->kw;
    pool_enter();
    pool_run(fill_row, (void *)a, rows, threads < rows ? threads : rows);
    pool_leave();
    return 0;
}
