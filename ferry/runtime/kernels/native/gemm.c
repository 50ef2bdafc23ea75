/* Y = W @ X + epilogue for float32, with W packed once: the GEMM of 1x1 and im2col
 * convolutions (ONNX Conv), on ferry's own thread pool.
 *
 * Work items are (64 output rows) x (96 columns) of Y. An item accumulates into a small
 * buffer C (64 x 96, cache-resident) over chunks of 256 of k: the chunk of X's columns is
 * copied into contiguous panels 24 (or, at the right edge, 8) columns wide, then the
 * register tiles of native.h (4 x 24, 4 x 8) run over them for every group of 4 rows of W.
 * After the last chunk C is stored with + bias, + residual and the activation. A single
 * column (a matrix-vector product) takes its own loop instead: 4 rows at a time over k. */
#include <stdlib.h>
#include <string.h>

#include "native.h"

enum { ROWS_PER_ITEM = 64, COLUMNS_PER_ITEM = 96, K_CHUNK = 256, NARROW = 8 };

typedef struct {
    const PackedGemm *gemm;
    int row_chunks, column_chunks;
    float *xx; /* n == 1: x[k] repeated 4 times per k */
} Job;

#ifdef FERRY_X86

/* out (4 x 8, row stride ldo) = [out +] u (k x 4, packed) @ v (k x 8, rows 8 apart). */
TARGET static inline void gemm_4x8(int k, const float *u, const float *v, float *out, size_t ldo,
                                   int accumulate)
{
    __m256 c0, c1, c2, c3;
    if (accumulate) {
        c0 = _mm256_loadu_ps(out), c1 = _mm256_loadu_ps(out + ldo);
        c2 = _mm256_loadu_ps(out + 2 * ldo), c3 = _mm256_loadu_ps(out + 3 * ldo);
    } else {
        c0 = c1 = c2 = c3 = _mm256_setzero_ps();
    }
    for (int i = 0; i < k; ++i, u += MR, v += NARROW) {
        __m256 x = _mm256_loadu_ps(v);
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(u), x, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(u + 1), x, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(u + 2), x, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(u + 3), x, c3);
    }
    _mm256_storeu_ps(out, c0);
    _mm256_storeu_ps(out + ldo, c1);
    _mm256_storeu_ps(out + 2 * ldo, c2);
    _mm256_storeu_ps(out + 3 * ldo, c3);
}

/* Panels of X[k0:k0 + kc, col0:col0 + count]: 24 columns wide, the last (< 24) 8 wide,
 * zero beyond count; returns the panel widths in `widths` and their number. */
static int pack_panels(const PackedGemm *g, int k0, int kc, int col0, int count, float *panels,
                       int widths[COLUMNS_PER_ITEM / NARROW])
{
    int n = 0;
    for (int c = 0; c < count; ++n) {
        int width = count - c >= NR ? NR : NARROW;
        int take = count - c < width ? count - c : width;
        const float *src = g->x + (size_t)k0 * g->ldx + col0 + c;
        for (int i = 0; i < kc; ++i, src += g->ldx, panels += width) {
            memcpy(panels, src, sizeof(float) * take);
            if (take < width)
                memset(panels + take, 0, sizeof(float) * (width - take));
        }
        widths[n] = width;
        c += width;
    }
    return n;
}

/* The last k chunk of a whole item: 4 panels of 24, every tile finished from the registers
 * (its earlier chunks, if any, accumulated in c). */
TARGET static void finish_whole_item(const PackedGemm *g, const Epilogue *e, int row0, int col0,
                                     int kc, int k0, const float *panels, const float *c,
                                     size_t ldc)
{
    for (int r = 0; r < ROWS_PER_ITEM; r += MR) {
        const float *u = g->w + (size_t)(row0 + r) * g->k + (size_t)k0 * MR;
        const float *bias = e->bias ? e->bias + row0 + r : NULL;
        for (int p = 0; p < COLUMNS_PER_ITEM / NR; ++p) {
            __m256 acc[12];
            load_4x24(c + (size_t)r * ldc + p * NR, ldc, k0 > 0, acc);
            tile_4x24(kc, u, panels + (size_t)p * kc * NR, NR, acc);
            size_t at = (size_t)(row0 + r) * g->ldy + col0 + p * NR;
            finish_4x24(e, bias, e->residual ? e->residual + at : NULL, g->y + at, g->ldy, acc);
        }
    }
}

TARGET static void run_item(void *ctx, int item, int slot)
{
    const Job *job = ctx;
    const PackedGemm *g = job->gemm;
    const int row0 = (item / job->column_chunks) * ROWS_PER_ITEM;
    const int col0 = (item % job->column_chunks) * COLUMNS_PER_ITEM;
    const int rows = g->mp - row0 < ROWS_PER_ITEM ? g->mp - row0 : ROWS_PER_ITEM;
    const int count = g->n - col0 < COLUMNS_PER_ITEM ? g->n - col0 : COLUMNS_PER_ITEM;
    float *panels = pool_scratch(slot, 0, (size_t)K_CHUNK * (COLUMNS_PER_ITEM + NR));
    float *c = pool_scratch(slot, 1, (size_t)ROWS_PER_ITEM * (COLUMNS_PER_ITEM + NR));
    if (!panels || !c)
        abort(); /* sized by packed_gemm before the parallel part: cannot fail here */
    const size_t ldc = COLUMNS_PER_ITEM + NR;
    int widths[COLUMNS_PER_ITEM / NARROW];
    const Epilogue *e = &g->epilogue;
    /* a whole item (every row real, every column inside Y) is finished from the registers */
    const int whole = count == COLUMNS_PER_ITEM && row0 + ROWS_PER_ITEM <= g->m;
    for (int k0 = 0; k0 < g->k; k0 += K_CHUNK) {
        const int kc = g->k - k0 < K_CHUNK ? g->k - k0 : K_CHUNK;
        const int npanels = pack_panels(g, k0, kc, col0, count, panels, widths);
        if (whole && k0 + kc == g->k) {
            finish_whole_item(g, e, row0, col0, kc, k0, panels, c, ldc);
            return;
        }
        for (int r = 0; r < rows; r += MR) {
            const float *u = g->w + (size_t)(row0 + r) * g->k + (size_t)k0 * MR;
            const float *v = panels;
            float *out = c + (size_t)r * ldc;
            for (int p = 0; p < npanels; v += (size_t)kc * widths[p], out += widths[p], ++p) {
                if (widths[p] == NR)
                    gemm_4x24(kc, u, v, NR, out, ldc, k0 > 0);
                else
                    gemm_4x8(kc, u, v, out, ldc, k0 > 0);
            }
        }
    }
    const int last = g->m - row0 < rows ? g->m - row0 : rows;
    for (int r = 0; r < last; ++r) {
        size_t at = (size_t)(row0 + r) * g->ldy + col0;
        store_row_finished(e, e->bias ? e->bias[row0 + r] : 0.0f, c + (size_t)r * ldc,
                           e->residual ? e->residual + at : NULL, g->y + at, count);
    }
}

/* One column (n == 1): y = W x, 4 rows at a time, vectorized over k through `xx`, which
 * repeats every x[k] four times (so a load of packed W pairs with a load of xx). */
TARGET static void run_gemv_item(void *ctx, int item, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const PackedGemm *g = job->gemm;
    const Epilogue *e = &g->epilogue;
    const int row0 = item * ROWS_PER_ITEM;
    const int rows = g->mp - row0 < ROWS_PER_ITEM ? g->mp - row0 : ROWS_PER_ITEM;
    const int pairs = g->k / 2;
    for (int r = 0; r < rows; r += MR) {
        const float *w = g->w + (size_t)(row0 + r) * g->k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i + 4 <= pairs; i += 4) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), _mm256_loadu_ps(job->xx + 8 * i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i + 8), _mm256_loadu_ps(job->xx + 8 * i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i + 16), _mm256_loadu_ps(job->xx + 8 * i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i + 24), _mm256_loadu_ps(job->xx + 8 * i + 24), a3);
        }
        for (; i < pairs; ++i)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), _mm256_loadu_ps(job->xx + 8 * i), a0);
        __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        float out[4];
        _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1)));
        for (int q = 0; q < MR; ++q) {
            const int row = row0 + r + q;
            if (row >= g->m)
                break;
            float v = out[q];
            if (g->k % 2)
                v += w[(size_t)(g->k - 1) * MR + q] * job->xx[(size_t)(g->k - 1) * MR];
            store_row_finished(e, e->bias ? e->bias[row] : 0.0f, &v,
                               e->residual ? e->residual + (size_t)row * g->ldy : NULL,
                               g->y + (size_t)row * g->ldy, 1);
        }
    }
}

#else

static void run_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void run_gemv_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }

#endif

/* Products under this many multiply-adds run on the caller's thread alone: waking a
 * sleeping worker costs more than it saves. */
static const double SMALL_WORK = 1 << 21;

int packed_gemm(const PackedGemm *gemm, int threads)
{
    Job job = {gemm, (gemm->mp + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM,
               (gemm->n + COLUMNS_PER_ITEM - 1) / COLUMNS_PER_ITEM, NULL};
    int items = job.row_chunks * job.column_chunks;
    if ((double)gemm->m * gemm->k * gemm->n < SMALL_WORK)
        threads = 1;
    if (threads > items)
        threads = items;
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    if (threads < 1)
        threads = 1;
    int status = 0;
    pool_enter();
    for (int slot = 0; slot < threads && !status; ++slot)
        if (!pool_scratch(slot, 0, (size_t)K_CHUNK * (COLUMNS_PER_ITEM + NR)) ||
            !pool_scratch(slot, 1, (size_t)ROWS_PER_ITEM * (COLUMNS_PER_ITEM + NR)))
            status = -1;
    if (!status && gemm->n == 1) {
        job.xx = pool_scratch(0, 2, (size_t)gemm->k * MR + 8);
        if (!job.xx) {
            status = -1;
        } else {
            for (int k = 0; k < gemm->k; ++k)
                for (int q = 0; q < MR; ++q)
                    job.xx[(size_t)k * MR + q] = gemm->x[(size_t)k * gemm->ldx];
            pool_run(run_gemv_item, &job, job.row_chunks, threads);
        }
    } else if (!status) {
        pool_run(run_item, &job, items, threads);
    }
    pool_leave();
    return status;
}
