/* Y = W @ X + epilogue for float32 on ferry's own thread pool: the GEMM of 1x1 and im2col
 * convolutions (ONNX Conv; W = packed weights, X = the image), and of MatMul/Gemm with
 * constant weights (W = the activations' rows, packed per call; X = the weights, packed once
 * as panels, so rows of Y come out row-major as MatMul's).
 *
 * Work items are (64 output rows) x (96 columns) of Y. An item goes over k in chunks of
 * 256: the chunk of X's columns is copied into contiguous panels 24 columns wide (8 wide,
 * or dot products for the last 1-4 columns, at the right edge) -- by the item, or once for
 * the whole call when several row chunks read X, or not at all when X came pre-packed --
 * then the register tiles of native.h run over them for every group of 4 rows of W,
 * earlier chunks accumulating in a small cache-resident buffer C (64 x 120).
 * Tiles of the last chunk are stored with + bias, + residual and the activation straight
 * from the registers where they cover 4 real rows and 24 columns, else from C. A single
 * column (a matrix-vector product) takes its own loop instead: 4 rows at a time over k. */
#include <stdlib.h>
#include <string.h>

#include "native.h"

enum { ROWS_PER_ITEM = 64, COLUMNS_PER_ITEM = 96, K_CHUNK = 256, NARROW = 8, FEW = 4 };

typedef struct {
    const PackedGemm *gemm;
    int row_chunks, column_chunks, per_matrix; /* items per matrix: row x column chunks */
    float *xx;       /* n == 1: x[k] repeated 4 times per k */
    float *packed;   /* W packed from the plain rows `a` */
    float *packed_x; /* X's panels, packed once for all row chunks, or NULL */
    int k_chunks;
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

/* out[0:4, 0:columns] (row stride ldo) = [out +] u (k x 4, packed) @ the columns of a
 * "few" panel, in which each column is k x 4 floats (x[k] repeated 4 times): dot products
 * over pairs of k, for the last 1 to 4 columns of a GEMM, where a 4 x 8 tile would spend
 * most of its work on zero padding (1 of 49 columns cost 40% of a 7 x 7 convolution). */
TARGET static void gemm_4xfew(int k, const float *u, const float *v, int columns, float *out,
                              size_t ldo, int accumulate)
{
    for (int j = 0; j < columns; ++j, v += (size_t)k * MR) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int i = 0;
        for (; i + 4 <= k; i += 4) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(u + MR * i), _mm256_loadu_ps(v + MR * i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(u + MR * i + 8), _mm256_loadu_ps(v + MR * i + 8), a1);
        }
        __m256 sum = _mm256_add_ps(a0, a1);
        __m128 rows = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        for (; i < k; ++i)
            rows = _mm_fmadd_ps(_mm_loadu_ps(u + MR * i), _mm_loadu_ps(v + MR * i), rows);
        float value[MR];
        _mm_storeu_ps(value, rows);
        for (int q = 0; q < MR; ++q)
            out[q * ldo + j] = accumulate ? out[q * ldo + j] + value[q] : value[q];
    }
}

/* The widths of the panels of `count` columns: 24, then 8 (zero beyond count) for a rest
 * of 5 or more columns, a "few" panel (see gemm_4xfew) for the last 1 to 4; returns their
 * number. */
static int panel_widths(int count, int widths[COLUMNS_PER_ITEM / NARROW])
{
    int n = 0;
    for (int c = 0; c < count; c += widths[n++])
        widths[n] = count - c <= FEW ? count - c : count - c >= NR ? NR : NARROW;
    return n;
}

/* Panels of X[k0:k0 + kc, col0:col0 + count] back to back (each kc x its width; a few
 * panel holds each column's x[k] four times); returns their widths and number. */
TARGET static int pack_panels(const PackedGemm *g, int k0, int kc, int col0, int count, float *panels,
                              int widths[COLUMNS_PER_ITEM / NARROW])
{
    const int n = panel_widths(count, widths);
    for (int p = 0, c = 0; p < n; c += widths[p++]) {
        const int width = widths[p], take = count - c < width ? count - c : width;
        const float *src = g->x + (size_t)k0 * g->ldx + col0 + c;
        if (width <= FEW) {
            for (int j = 0; j < width; ++j)
                for (int i = 0; i < kc; ++i, panels += MR)
                    panels[0] = panels[1] = panels[2] = panels[3] = src[(size_t)i * g->ldx + j];
        } else if (take == NR) { /* the common case: copied in registers, not by a call per row */
            for (int i = 0; i < kc; ++i, src += g->ldx, panels += NR) {
                __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8), d = _mm256_loadu_ps(src + 16);
                _mm256_storeu_ps(panels, a);
                _mm256_storeu_ps(panels + 8, b);
                _mm256_storeu_ps(panels + 16, d);
            }
        } else {
            for (int i = 0; i < kc; ++i, src += g->ldx, panels += width) {
                memcpy(panels, src, sizeof(float) * take);
                memset(panels + take, 0, sizeof(float) * (width - take));
            }
        }
    }
    return n;
}

/* Floats of one (column chunk, k chunk) block of panels: what pack_panels writes at most. */
enum { PANEL_BLOCK = K_CHUNK * (COLUMNS_PER_ITEM + NR) };

/* Where the panels of an item's k chunk are: `first` is the first panel, `stride` floats
 * between panels (0: back to back, each kc x its width), widths[p] their widths. */
typedef struct {
    const float *first;
    size_t stride;
    int count;
    int widths[COLUMNS_PER_ITEM / NARROW];
} Panels;

/* The panels of chunk (col0, k0): from the weights' pre-packed panels (xp), from the
 * blocks packed for the whole call (X read by several row chunks), or packed here. */
static void chunk_panels(const Job *job, const PackedGemm *g, int k0, int kc, int col0, int count,
                         float *buffer, Panels *p)
{
    p->stride = 0;
    if (g->xp) { /* pre-packed: panels of NR columns, k rows each */
        p->first = g->xp + (size_t)(col0 / NR) * g->k * NR + (size_t)k0 * NR;
        p->stride = (size_t)g->k * NR;
        p->count = (count + NR - 1) / NR;
        for (int i = 0; i < p->count; ++i)
            p->widths[i] = NR;
    } else if (job->packed_x) {
        const size_t block = (size_t)(col0 / COLUMNS_PER_ITEM) * job->k_chunks + k0 / K_CHUNK;
        p->first = job->packed_x + block * PANEL_BLOCK;
        p->count = panel_widths(count, p->widths);
    } else {
        p->first = buffer;
        p->count = pack_panels(g, k0, kc, col0, count, buffer, p->widths);
    }
}

/* Packs block `item` (column chunk item / k_chunks, k chunk item % k_chunks) of X. */
TARGET static void pack_x_item(void *ctx, int item, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const PackedGemm *g = job->gemm;
    const int col0 = item / job->k_chunks * COLUMNS_PER_ITEM, k0 = item % job->k_chunks * K_CHUNK;
    const int count = g->n - col0 < COLUMNS_PER_ITEM ? g->n - col0 : COLUMNS_PER_ITEM;
    const int kc = g->k - k0 < K_CHUNK ? g->k - k0 : K_CHUNK;
    int widths[COLUMNS_PER_ITEM / NARROW];
    pack_panels(g, k0, kc, col0, count, job->packed_x + (size_t)item * PANEL_BLOCK, widths);
}

/* The 4 x 24 tile at (row0 + r, col0 + column) of Y after the last k chunk: earlier chunks
 * (k0 > 0) from c, this one from the registers, stored finished. */
TARGET static void finish_tile(const PackedGemm *g, int row0, int r, int col0, int column,
                               int kc, int k0, const float *u, const float *v, const float *c,
                               size_t ldc)
{
    const Epilogue *e = &g->epilogue;
    __m256 acc[12];
    load_4x24(c + (size_t)r * ldc + column, ldc, k0 > 0, acc);
    tile_4x24(kc, u, v, NR, acc);
    const size_t at = (size_t)(row0 + r) * g->ldy + col0 + column;
    finish_4x24(e, e->bias ? e->bias + row0 + r : NULL,
                e->column_bias ? e->column_bias + col0 + column : NULL,
                e->residual ? e->residual + at : NULL, g->y + at, g->ldy, acc);
}

TARGET static void gemm_item(const Job *job, const PackedGemm *g, int item, int slot)
{
    /* consecutive items share their rows of W (two threads on one column chunk were 40%
     * slower than on neighbouring ones) */
    const int row0 = (item / job->column_chunks) * ROWS_PER_ITEM;
    const int col0 = (item % job->column_chunks) * COLUMNS_PER_ITEM;
    const int rows = g->mp - row0 < ROWS_PER_ITEM ? g->mp - row0 : ROWS_PER_ITEM;
    const int count = g->n - col0 < COLUMNS_PER_ITEM ? g->n - col0 : COLUMNS_PER_ITEM;
    float *buffer = pool_scratch(slot, 0, (size_t)K_CHUNK * (COLUMNS_PER_ITEM + NR));
    float *c = pool_scratch(slot, 1, (size_t)ROWS_PER_ITEM * (COLUMNS_PER_ITEM + NR));
    if (!buffer || !c)
        abort(); /* sized by packed_gemm before the parallel part: cannot fail here */
    const size_t ldc = COLUMNS_PER_ITEM + NR;
    /* In the last k chunk, the tiles of full panels (24 columns inside Y) in groups of 4
     * real rows are finished from the registers; every other tile goes through c. */
    const int direct = count / NR * NR;
    Panels panels;
    for (int k0 = 0; k0 < g->k; k0 += K_CHUNK) {
        const int kc = g->k - k0 < K_CHUNK ? g->k - k0 : K_CHUNK;
        const int last_chunk = k0 + kc == g->k;
        chunk_panels(job, g, k0, kc, col0, count, buffer, &panels);
        for (int r = 0; r < rows; r += MR) {
            const float *u = g->w + (size_t)(row0 + r) * g->k + (size_t)k0 * MR;
            const int finish = last_chunk && row0 + r + MR <= g->m;
            const float *v = panels.first;
            for (int p = 0, column = 0; p < panels.count; ++p) {
                const int width = panels.widths[p];
                float *out = c + (size_t)r * ldc + column;
                if (width == NR && finish && column + NR <= direct)
                    finish_tile(g, row0, r, col0, column, kc, k0, u, v, c, ldc);
                else if (width == NR)
                    gemm_4x24(kc, u, v, NR, out, ldc, k0 > 0);
                else if (width == NARROW)
                    gemm_4x8(kc, u, v, out, ldc, k0 > 0);
                else
                    gemm_4xfew(kc, u, v, width, out, ldc, k0 > 0);
                v += panels.stride ? panels.stride : (size_t)kc * (width <= FEW ? width * MR : width);
                column += width;
            }
        }
    }
    const Epilogue *e = &g->epilogue;
    const int real = g->m - row0 < rows ? g->m - row0 : rows;
    for (int r = 0; r < real; ++r) {
        const int from = r < real / MR * MR ? direct : 0; /* columns not finished above */
        if (from >= count)
            continue;
        size_t at = (size_t)(row0 + r) * g->ldy + col0 + from;
        store_row_finished(e, e->bias ? e->bias[row0 + r] : 0.0f,
                           e->column_bias ? e->column_bias + col0 + from : NULL,
                           c + (size_t)r * ldc + from, e->residual ? e->residual + at : NULL,
                           g->y + at, count - from);
    }
}

/* Packs rows 4 * group .. 4 * group + 3 of `a` (m x k, lda apart) as (k, 4) into w; rows
 * past m are zeros. 8 k at a time: four rows of 8 transposed in registers. */
/* Item `item` of the whole call: matrix item / per_matrix of the batch, seen through a
 * copy of the problem whose pointers are moved to that matrix. */
TARGET static void run_item(void *ctx, int item, int slot)
{
    const Job *job = ctx;
    const int matrix = item / job->per_matrix;
    if (matrix == 0) {
        gemm_item(job, job->gemm, item, slot);
        return;
    }
    PackedGemm view = *job->gemm;
    view.w += (size_t)matrix * view.mp * view.k;
    view.x += (size_t)matrix * view.x_stride;
    view.y += (size_t)matrix * view.y_stride;
    if (view.epilogue.residual)
        view.epilogue.residual += (size_t)matrix * view.y_stride;
    gemm_item(job, &view, item % job->per_matrix, slot);
}

TARGET static void pack_rows_item(void *ctx, int item, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const PackedGemm *g = job->gemm;
    const int groups = g->mp / MR, matrix = item / groups, group = item % groups;
    float *w = job->packed + (size_t)item * g->k * MR; /* matrices back to back */
    const float *a = g->a + (size_t)matrix * g->a_stride;
    const float *row[MR];
    int real = 0;
    for (int q = 0; q < MR; ++q) {
        const int index = group * MR + q;
        row[q] = index < g->m ? a + (size_t)index * g->lda : NULL;
        real += row[q] != NULL;
    }
    int k = 0;
    if (real == MR) {
        for (; k + 8 <= g->k; k += 8, w += 8 * MR) {
            __m256 r0 = _mm256_loadu_ps(row[0] + k), r1 = _mm256_loadu_ps(row[1] + k);
            __m256 r2 = _mm256_loadu_ps(row[2] + k), r3 = _mm256_loadu_ps(row[3] + k);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 k04 = _mm256_shuffle_ps(t0, t2, 0x44), k15 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 k26 = _mm256_shuffle_ps(t1, t3, 0x44), k37 = _mm256_shuffle_ps(t1, t3, 0xEE);
            _mm256_storeu_ps(w, _mm256_permute2f128_ps(k04, k15, 0x20));
            _mm256_storeu_ps(w + 8, _mm256_permute2f128_ps(k26, k37, 0x20));
            _mm256_storeu_ps(w + 16, _mm256_permute2f128_ps(k04, k15, 0x31));
            _mm256_storeu_ps(w + 24, _mm256_permute2f128_ps(k26, k37, 0x31));
        }
    }
    for (; k < g->k; ++k, w += MR)
        for (int q = 0; q < MR; ++q)
            w[q] = row[q] ? row[q][k] : 0.0f;
}

/* Rows row .. row + 3 of y = W x from `sum` (their dot products over the k pairs), plus
 * an odd k's last term, finished with the epilogue. */
TARGET static void store_gemv_group(const Job *job, const PackedGemm *g, int row, const float *w,
                                    __m256 sum)
{
    const Epilogue *e = &g->epilogue;
    float out[MR];
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1)));
    for (int q = 0; q < MR && row + q < g->m; ++q) {
        float v = out[q];
        if (g->k % 2)
            v += w[(size_t)(g->k - 1) * MR + q] * job->xx[(size_t)(g->k - 1) * MR];
        store_row_finished(e, e->bias ? e->bias[row + q] : 0.0f, e->column_bias, &v,
                           e->residual ? e->residual + (size_t)(row + q) * g->ldy : NULL,
                           g->y + (size_t)(row + q) * g->ldy, 1);
    }
}

/* One column (n == 1): y = W x, vectorized over k through `xx`, which repeats every x[k]
 * four times (so a load of packed W pairs with a load of xx); four groups of 4 rows at a
 * time share each load of xx (5 loads per 4 multiply-adds instead of 8). */
TARGET static void run_gemv_item(void *ctx, int item, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const PackedGemm *g = job->gemm;
    const int row0 = item * ROWS_PER_ITEM;
    const int rows = g->mp - row0 < ROWS_PER_ITEM ? g->mp - row0 : ROWS_PER_ITEM;
    const int pairs = g->k / 2;
    const size_t group = (size_t)g->k * MR; /* floats of W per group of 4 rows */
    int r = 0;
    for (; r + 4 * MR <= rows; r += 4 * MR) {
        const float *w = g->w + (size_t)(row0 + r) * g->k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < pairs; ++i) {
            const __m256 x = _mm256_loadu_ps(job->xx + 8 * i);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), x, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + group + 8 * i), x, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 2 * group + 8 * i), x, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 3 * group + 8 * i), x, a3);
        }
        store_gemv_group(job, g, row0 + r, w, a0);
        store_gemv_group(job, g, row0 + r + MR, w + group, a1);
        store_gemv_group(job, g, row0 + r + 2 * MR, w + 2 * group, a2);
        store_gemv_group(job, g, row0 + r + 3 * MR, w + 3 * group, a3);
    }
    for (; r < rows; r += MR) {
        const float *w = g->w + (size_t)(row0 + r) * g->k;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int i = 0;
        for (; i + 2 <= pairs; i += 2) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), _mm256_loadu_ps(job->xx + 8 * i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i + 8), _mm256_loadu_ps(job->xx + 8 * i + 8), a1);
        }
        if (i < pairs)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), _mm256_loadu_ps(job->xx + 8 * i), a0);
        store_gemv_group(job, g, row0 + r, w, _mm256_add_ps(a0, a1));
    }
}

#else

static void run_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void run_gemv_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void pack_rows_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }

#endif

/* Products under this many multiply-adds run on the caller's thread alone: waking a
 * sleeping worker costs more than it saves. (Matrix-vector products included: two threads
 * made bench/'s MLP faster back to back, 0.175 -> 0.14 ms, but 1.5-3x slower in the
 * benchmark's interleaved samples, where the worker may be sleeping or preempted.) */
static const double SMALL_WORK = 1 << 21;

int packed_gemm(const PackedGemm *gemm, int threads)
{
    PackedGemm g = *gemm;
    const int batch = g.batch > 1 ? g.batch : 1;
    Job job = {&g, (g.mp + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM,
               (g.n + COLUMNS_PER_ITEM - 1) / COLUMNS_PER_ITEM, 0, NULL, NULL, NULL,
               (g.k + K_CHUNK - 1) / K_CHUNK};
    job.per_matrix = job.row_chunks * job.column_chunks;
    int items = job.per_matrix * batch;
    if ((double)g.m * g.k * g.n * batch < SMALL_WORK)
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
    if (!status && !g.w) { /* plain rows: pack them first, 4 rows per item */
        job.packed = pool_scratch(0, 3, (size_t)batch * g.mp * g.k);
        if (!job.packed)
            status = -1;
        else
            pool_run(pack_rows_item, &job, batch * (g.mp / MR), threads);
        g.w = job.packed;
    }
    /* X read by several row chunks: its panels packed once, not once per row chunk (ResNet-50
     * 2-4% faster in an A/B within one process) */
    if (!status && !g.xp && g.n > 1 && batch == 1 && job.row_chunks > 1) {
        const int blocks = job.column_chunks * job.k_chunks;
        job.packed_x = pool_scratch(0, 2, (size_t)blocks * PANEL_BLOCK);
        if (!job.packed_x)
            status = -1;
        else
            pool_run(pack_x_item, &job, blocks, threads);
    }
    if (!status && g.n == 1 && !g.xp && batch == 1) {
        job.xx = pool_scratch(0, 2, (size_t)g.k * MR + 8);
        if (!job.xx) {
            status = -1;
        } else {
            for (int k = 0; k < g.k; ++k)
                for (int q = 0; q < MR; ++q)
                    job.xx[(size_t)k * MR + q] = g.x[(size_t)k * g.ldx];
            pool_run(run_gemv_item, &job, job.row_chunks, threads);
        }
    } else if (!status) {
        pool_run(run_item, &job, items, threads);
    }
    pool_leave();
    return status;
}
