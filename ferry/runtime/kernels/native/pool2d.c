/* 2-D max pooling of float32 planes (ONNX MaxPool without the Indices output): the max
 * over each window of kernel taps, padding excluded, NaN propagating as in numpy's
 * maximum. Planes (N * C) are shared between threads.
 *
 * Each input row is reduced horizontally once, then output rows take the vertical max of
 * their window's rows. A strided horizontal window becomes contiguous by splitting the input row
 * into its `sw` phases (phase q holds columns q, q + sw, ...) with -inf margins: tap j reads
 * phase (j * dw - pl) mod sw at offset floor((j * dw - pl) / sw) from the output column, so
 * every tap is one contiguous vector max over the output row. */
#include <math.h>
#include <stdlib.h>

#include "native.h"

typedef struct {
    const Window2d *pool;
    int margin, phase_len; /* -inf columns on each side of a phase; floats per phase */
} Plan;

static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Per thread: the phases of one row, then the horizontal maxima of every row of a plane. */
static inline size_t scratch_floats(const Plan *plan)
{
    const Window2d *p = plan->pool;
    return (size_t)p->sw * plan->phase_len + (size_t)p->h * p->ow + 16;
}

#ifdef FERRY_X86

/* max(a, b), NaN if either is NaN. */
TARGET static inline __m256 max_nan(__m256 a, __m256 b)
{
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

static inline float max_nan1(float a, float b) { return (a != a || a > b) ? a : b; }

/* out[x] = max over taps of input row `row` (ow values) via its phases in `phases`. */
TARGET static void row_max(const Plan *plan, const float *row, float *phases, float *out)
{
    const Window2d *p = plan->pool;
    const int len = plan->phase_len;
    if (p->sw == 2) { /* deinterleave 16 columns at a time */
        float *even = phases, *odd = phases + len;
        for (int x = 0; x < plan->margin; ++x)
            even[x] = odd[x] = -INFINITY;
        int c = 0, x = plan->margin;
        for (; c + 16 <= p->w; c += 16, x += 8) {
            __m256 a = _mm256_loadu_ps(row + c), b = _mm256_loadu_ps(row + c + 8);
            __m256 e = _mm256_shuffle_ps(a, b, 0x88), o = _mm256_shuffle_ps(a, b, 0xDD);
            _mm256_storeu_ps(even + x, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
            _mm256_storeu_ps(odd + x, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
        }
        int xe = x, xo = x;
        for (int k = c; k < p->w; ++k)
            if ((k - c) % 2 == 0)
                even[xe++] = row[k];
            else
                odd[xo++] = row[k];
        for (; xe < len; ++xe)
            even[xe] = -INFINITY;
        for (; xo < len; ++xo)
            odd[xo] = -INFINITY;
    }
    for (int q = 0; q < p->sw && p->sw != 2; ++q) {
        float *phase = phases + (size_t)q * len;
        int x = 0;
        for (; x < plan->margin; ++x)
            phase[x] = -INFINITY;
        for (int c = q; c < p->w; c += p->sw, ++x)
            phase[x] = row[c];
        for (; x < len; ++x)
            phase[x] = -INFINITY;
    }
    for (int j = 0; j < p->kw; ++j) {
        const int shift = j * p->dw - p->pl;
        const int q = shift - p->sw * floor_div(shift, p->sw);
        const float *src = phases + (size_t)q * len + plan->margin + floor_div(shift, p->sw);
        int x = 0;
        if (j == 0) {
            for (; x < p->ow; ++x)
                out[x] = src[x];
            continue;
        }
        for (; x + 8 <= p->ow; x += 8)
            _mm256_storeu_ps(out + x, max_nan(_mm256_loadu_ps(out + x), _mm256_loadu_ps(src + x)));
        for (; x < p->ow; ++x)
            out[x] = max_nan1(out[x], src[x]);
    }
}

TARGET static void pool_plane(void *ctx, int plane, int slot)
{
    const Plan *plan = ctx;
    const Window2d *p = plan->pool;
    float *phases = pool_scratch(slot, 0, scratch_floats(plan));
    if (!phases)
        abort(); /* sized by max_pool_2d before the parallel part: cannot fail here */
    float *rows = phases + (size_t)p->sw * plan->phase_len; /* h x ow horizontal maxima */
    const float *in = p->x + (size_t)plane * p->h * p->w;
    float *out = p->out + (size_t)plane * p->oh * p->ow;
    for (int iy = 0; iy < p->h; ++iy)
        row_max(plan, in + (size_t)iy * p->w, phases, rows + (size_t)iy * p->ow);
    for (int oy = 0; oy < p->oh; ++oy, out += p->ow) {
        int first = 1;
        for (int i = 0; i < p->kh; ++i) {
            const int iy = oy * p->sh + i * p->dh - p->pt;
            if (iy < 0 || iy >= p->h)
                continue;
            const float *src = rows + (size_t)iy * p->ow;
            int x = 0;
            if (first) {
                for (; x < p->ow; ++x)
                    out[x] = src[x];
                first = 0;
                continue;
            }
            for (; x + 8 <= p->ow; x += 8)
                _mm256_storeu_ps(out + x, max_nan(_mm256_loadu_ps(out + x), _mm256_loadu_ps(src + x)));
            for (; x < p->ow; ++x)
                out[x] = max_nan1(out[x], src[x]);
        }
        if (first) /* the whole window is padding */
            for (int x = 0; x < p->ow; ++x)
                out[x] = -INFINITY;
    }
}

#else

static void pool_plane(void *ctx, int plane, int slot) { (void)ctx, (void)plane, (void)slot; }

#endif

int max_pool_2d(const Window2d *pool, int threads)
{
    /* output column x, tap j reads phase index x + floor((j dw - pl) / sw): margins cover
     * the most negative and the most positive reach */
    const int low = floor_div(-pool->pl, pool->sw);
    const int high = floor_div((pool->kw - 1) * pool->dw - pool->pl, pool->sw);
    Plan plan = {pool, 0, 0};
    plan.margin = (low < 0 ? -low : 0) + 1;
    const int cols = (pool->w + pool->sw - 1) / pool->sw;
    int needed = pool->ow + (high > 0 ? high : 0) + 1;
    plan.phase_len = plan.margin + (cols > needed ? cols : needed) + 8;
    if (threads > pool->c)
        threads = pool->c;
    if (threads < 1)
        threads = 1;
    int status = 0;
    pool_enter();
    for (int slot = 0; slot < threads && !status; ++slot)
        if (!pool_scratch(slot, 0, scratch_floats(&plan)))
            status = -1;
    if (!status)
        pool_run(pool_plane, &plan, pool->c, threads);
    pool_leave();
    return status;
}
