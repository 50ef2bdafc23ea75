/* 2-D max pooling of float32 planes (ONNX MaxPool without the Indices output): the max
 * over each window of kernel taps, padding excluded, NaN propagating as in numpy's
 * maximum. Planes (N * C) are shared between threads. */
#include <math.h>

#include "native.h"

static void pool_plane(void *ctx, int plane, int slot)
{
    (void)slot;
    const MaxPool2d *p = ctx;
    const float *in = p->x + (size_t)plane * p->h * p->w;
    float *out = p->y + (size_t)plane * p->oh * p->ow;
    for (int oy = 0; oy < p->oh; ++oy) {
        const int y0 = oy * p->sh - p->pt;
        for (int ox = 0; ox < p->ow; ++ox) {
            const int x0 = ox * p->sw - p->pl;
            float m = -INFINITY;
            for (int i = 0; i < p->kh; ++i) {
                const int iy = y0 + i * p->dh;
                if (iy < 0 || iy >= p->h)
                    continue;
                const float *row = in + (size_t)iy * p->w;
                for (int j = 0; j < p->kw; ++j) {
                    const int ix = x0 + j * p->dw;
                    if (ix < 0 || ix >= p->w)
                        continue;
                    const float v = row[ix];
                    if (v > m || v != v) /* a NaN sticks: nothing compares above it */
                        m = v;
                }
            }
            out[(size_t)oy * p->ow + ox] = m;
        }
    }
}

void max_pool_2d(const MaxPool2d *pool, int threads)
{
    pool_enter();
    pool_run(pool_plane, (void *)pool, pool->planes, threads < pool->planes ? threads : pool->planes);
    pool_leave();
}
