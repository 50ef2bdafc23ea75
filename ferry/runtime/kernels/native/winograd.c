/* Winograd F(4x4, 3x3) convolution of one float32 image, for x86-64 CPUs with AVX2 and FMA.
 *
 * ONNX Conv semantics for the case it covers: 2-D cross-correlation, 3x3 kernel, stride 1,
 * dilation 1, one group, zero padding. Every 4x4 output tile comes from a 6x6 input tile as
 *     Y = AT [ sum_c U[c] * (BT d[c] B) ] A,    U = G w G^T (packed once by the caller),
 * on the interpolation points 0, 1, -1, 2, -2 (Lavin & Gray 2016). The matrices below are
 * those points' Toom-Cook matrices; ferry/runtime/kernels/native_conv.py derives G from the
 * same points and a test checks that its AT and BT equal the constants written out here.
 *
 * Work: the image is first copied into a zero-padded buffer covering whole tiles. Tiles go
 * in "pairs" of two horizontally adjacent tiles (8 input columns: one AVX load), and pairs in
 * "groups" of four (one AVX lane per tile), taken row by row across tile rows, so small
 * images fill the lanes too. A block's transformed input V (36, C, TB) and products
 * M (36, Mp, TB) stay in the core's cache. Per block: input transform (contiguous loads
 * transposed in registers), 36 small GEMMs U[p] (Mp x C) @ V[p] (C x TB) with the 4x24
 * register tile of native.h, then the output transform, + bias, + residual, activation,
 * stored row by row with the tiles transposed back into contiguous pixels.
 *
 * Two schedules: images with enough blocks give each thread whole blocks; small images
 * (few tiles, many channels: weights U larger than the activations) run one block in three
 * parallel phases (input transform by channel, GEMMs by point and rows, output transform
 * by channel), so that each part of U is read by one thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "native.h"

enum { TILE = 4, PATCH = 6, POINTS = 36, LANES = 8, PAIRS = 4, GEMM_ROWS = 64 };

typedef struct {
    const WinogradConv *conv;
    int tiles_h, tiles_w, pairs_per_row, pairs, groups, blocks, block_groups, hp, wp;
    float *xp;          /* padded image, c x hp x wp */
    float *v, *mprod;   /* the one block of the three-phase schedule */
    size_t tb, vstride, mstride;
} Job;

/* Zero-padded copy of channel c into job->xp (hp x wp). */
static void pad_channel(void *ctx, int c, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const WinogradConv *conv = job->conv;
    float *dst = job->xp + (size_t)c * job->hp * job->wp;
    const float *src = conv->x + (size_t)c * conv->h * conv->w;
    int copy = conv->w < job->wp - conv->pad_left ? conv->w : job->wp - conv->pad_left;
    for (int r = 0; r < job->hp; ++r) {
        float *row = dst + (size_t)r * job->wp;
        int sr = r - conv->pad_top;
        if (sr < 0 || sr >= conv->h || copy <= 0) {
            memset(row, 0, sizeof(float) * job->wp);
            continue;
        }
        memset(row, 0, sizeof(float) * conv->pad_left);
        memcpy(row + conv->pad_left, src + (size_t)sr * conv->w, sizeof(float) * copy);
        memset(row + conv->pad_left + copy, 0, sizeof(float) * (job->wp - conv->pad_left - copy));
    }
}

/* Floats between the 36 planes of V or M: one cache line more than a plane, so that the 36
 * planes of one (channel, group) fall in different L1 sets instead of aliasing. */
static inline size_t point_stride(int rows, size_t tb) { return (size_t)rows * tb + 16; }

#ifdef FERRY_X86

/* o = BT d for one 6-vector (rows of BT: points 0, 1, -1, 2, -2, infinity). */
TARGET static inline void input_1d(const __m256 d[6], __m256 o[6])
{
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
    const __m256 two = _mm256_set1_ps(2.0f);
    __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
    __m256 b = _mm256_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
    __m256 c = _mm256_sub_ps(d[4], d[2]);
    __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    o[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    o[1] = _mm256_add_ps(a, b);
    o[2] = _mm256_sub_ps(a, b);
    o[3] = _mm256_add_ps(c, e);
    o[4] = _mm256_sub_ps(c, e);
    o[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

/* o = AT m for one 6-vector. */
TARGET static inline void output_1d(const __m256 m[6], __m256 o[4])
{
    __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), m[5]);
}

/* In-lane 4x4 transposes: out[i] = element i of each 128-bit half of a, b, c, d. */
TARGET static inline void transpose_halves(__m256 a, __m256 b, __m256 c, __m256 d, __m256 out[4])
{
    __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
    __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    out[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    out[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    out[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    out[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

/* Transformed input of one channel for a group of 4 tile pairs whose patches start at
 * base[0..3]; writes V[p][lane] for p < 36 at v + p * pstride. Lanes hold the first tiles of
 * the pairs, then their second tiles (what in-lane transposes of the pairs' contiguous loads
 * give); store_row undoes it. A patch row of a pair is line[4 j + n], j < 2, n < 6: two
 * loads (offsets 0 and 4) per pair, transposed within 128-bit halves. */
TARGET static void transform_input(const float *const base[PAIRS], int wp, float *v,
                                   size_t pstride)
{
    __m256 rows[6][6];
    for (int r = 0; r < PATCH; ++r) {
        const size_t at = (size_t)r * wp;
        __m256 d[6], high[4];
        transpose_halves(_mm256_loadu_ps(base[0] + at), _mm256_loadu_ps(base[1] + at),
                         _mm256_loadu_ps(base[2] + at), _mm256_loadu_ps(base[3] + at), d);
        transpose_halves(_mm256_loadu_ps(base[0] + at + 4), _mm256_loadu_ps(base[1] + at + 4),
                         _mm256_loadu_ps(base[2] + at + 4), _mm256_loadu_ps(base[3] + at + 4),
                         high);
        d[4] = high[0];
        d[5] = high[1];
        input_1d(d, rows[r]);
    }
    for (int col = 0; col < PATCH; ++col) {
        __m256 d[6], o[6];
        for (int r = 0; r < PATCH; ++r)
            d[r] = rows[r][col];
        input_1d(d, o);
        for (int k = 0; k < PATCH; ++k)
            _mm256_storeu_ps(v + (size_t)(k * PATCH + col) * pstride, o[k]);
    }
}

/* Where a pair's output row goes: offset of its first pixel in a channel plane of Y, and
 * how many of its 8 pixels are inside Y (0: none, e.g. past the last row). */
typedef struct {
    size_t at;
    int valid;
} PairRow;

/* One output row of a group: px[j] = pixel j of the 8 tiles (lanes as transform_input
 * leaves them), stored as 8 contiguous pixels per pair. */
TARGET static void store_row(const Epilogue *e, const __m256 px[4], const PairRow rows[PAIRS],
                             const float *res, float *out)
{
    __m256 q[4]; /* after the in-lane transpose: the 8 pixels of pair 0, 1, 2, 3 */
    transpose_halves(px[0], px[1], px[2], px[3], q);
    for (int i = 0; i < PAIRS; ++i) {
        const int count = rows[i].valid;
        if (count <= 0)
            continue;
        const size_t at = rows[i].at;
        if (count >= 8) {
            __m256 v = q[i];
            if (res)
                v = _mm256_add_ps(v, _mm256_loadu_ps(res + at));
            _mm256_storeu_ps(out + at, activate8(e, v));
        } else {
            __m256i mask = lane_mask(count);
            __m256 v = q[i];
            if (res)
                v = _mm256_add_ps(v, _mm256_maskload_ps(res + at, mask));
            _mm256_maskstore_ps(out + at, mask, activate8(e, v));
        }
    }
}

/* Tile row and first tile column of pair `pair` (pairs past the last are dead). */
static inline void pair_tile(const Job *job, int pair, int *ti, int *tj)
{
    *ti = pair / job->pairs_per_row;
    *tj = 2 * (pair % job->pairs_per_row);
}

/* Output transform of channel co for group g (its products at mprod + p * pstride). */
TARGET static void transform_output(const Job *job, const float *mprod, size_t pstride, int co,
                                    int g)
{
    const WinogradConv *conv = job->conv;
    __m256 cols[4][6];
    for (int col = 0; col < PATCH; ++col) {
        __m256 m[6], o[4];
        for (int r = 0; r < PATCH; ++r)
            m[r] = _mm256_loadu_ps(mprod + (size_t)(r * PATCH + col) * pstride);
        output_1d(m, o);
        for (int i = 0; i < TILE; ++i)
            cols[i][col] = o[i];
    }
    const Epilogue *e = &conv->epilogue;
    const __m256 bias = _mm256_set1_ps(e->bias ? e->bias[co] : 0.0f);
    const size_t plane = (size_t)co * conv->oh * conv->ow;
    int ti[PAIRS], tj[PAIRS];
    for (int q = 0; q < PAIRS; ++q)
        pair_tile(job, PAIRS * g + q, &ti[q], &tj[q]);
    for (int i = 0; i < TILE; ++i) {
        PairRow rows[PAIRS];
        int any = 0;
        for (int q = 0; q < PAIRS; ++q) {
            const int row = TILE * ti[q] + i, left = conv->ow - TILE * tj[q];
            const int live = PAIRS * g + q < job->pairs && row < conv->oh;
            rows[q].valid = live ? (left < 2 * TILE ? left : 2 * TILE) : 0;
            rows[q].at = plane + (size_t)row * conv->ow + (size_t)TILE * tj[q];
            any |= rows[q].valid > 0;
        }
        if (!any)
            continue;
        __m256 px[4];
        output_1d(cols[i], px);
        for (int j = 0; j < TILE; ++j)
            px[j] = _mm256_add_ps(px[j], bias);
        store_row(e, px, rows, e->residual, conv->y);
    }
}

/* Input transform of channel c for groups [g0, g1) into V (columns from group g0 on). */
TARGET static void input_groups(const Job *job, int c, int g0, int g1, float *v, size_t tb,
                                size_t vstride)
{
    const float *plane = job->xp + (size_t)c * job->hp * job->wp;
    for (int g = g0; g < g1; ++g) {
        const float *base[PAIRS];
        for (int q = 0; q < PAIRS; ++q) {
            int ti, tj, pair = PAIRS * g + q < job->pairs ? PAIRS * g + q : 0;
            pair_tile(job, pair, &ti, &tj);
            base[q] = plane + (size_t)TILE * ti * job->wp + TILE * tj;
        }
        transform_input(base, job->wp, v + (size_t)c * tb + (size_t)(g - g0) * LANES, vstride);
    }
}

/* GEMMs of point p for rows [r0, r1) of U over `columns` columns of V into M. */
TARGET static void gemm_point(const Job *job, int p, int r0, int r1, int columns, const float *v,
                              float *mprod, size_t tb)
{
    const WinogradConv *conv = job->conv;
    const float *up = conv->u + (size_t)p * conv->mp * conv->c;
    for (int r = r0; r < r1; r += MR)
        for (int n = 0; n < columns; n += NR)
            gemm_4x24(conv->c, up + (size_t)r * conv->c, v + p * job->vstride + n, tb,
                      mprod + p * job->mstride + (size_t)r * tb + n, tb, 0);
}

TARGET static void run_block(void *ctx, int block, int slot)
{
    const Job *job = ctx;
    const WinogradConv *conv = job->conv;
    const int g0 = block * job->block_groups;
    const int g1 = g0 + job->block_groups < job->groups ? g0 + job->block_groups : job->groups;
    float *v = pool_scratch(slot, 0, POINTS * job->vstride);
    float *mprod = pool_scratch(slot, 1, POINTS * job->mstride);
    if (!v || !mprod)
        abort(); /* sized by winograd_f43 before the parallel part: cannot fail here */
    for (int c = 0; c < conv->c; ++c)
        input_groups(job, c, g0, g1, v, job->tb, job->vstride);
    for (int p = 0; p < POINTS; ++p)
        gemm_point(job, p, 0, conv->mp, (g1 - g0) * LANES, v, mprod, job->tb);
    for (int co = 0; co < conv->m; ++co)
        for (int g = g0; g < g1; ++g)
            transform_output(job, mprod + (size_t)co * job->tb + (size_t)(g - g0) * LANES,
                             job->mstride, co, g);
}

/* The three phases of the one-block schedule. */
TARGET static void phase_input(void *ctx, int c, int slot)
{
    (void)slot;
    const Job *job = ctx;
    input_groups(job, c, 0, job->groups, job->v, job->tb, job->vstride);
}

TARGET static void phase_gemm(void *ctx, int item, int slot)
{
    (void)slot;
    const Job *job = ctx;
    const int chunks = (job->conv->mp + GEMM_ROWS - 1) / GEMM_ROWS;
    const int p = item / chunks, r0 = (item % chunks) * GEMM_ROWS;
    const int r1 = r0 + GEMM_ROWS < job->conv->mp ? r0 + GEMM_ROWS : job->conv->mp;
    gemm_point(job, p, r0, r1, job->groups * LANES, job->v, job->mprod, job->tb);
}

TARGET static void phase_output(void *ctx, int co, int slot)
{
    (void)slot;
    const Job *job = ctx;
    for (int g = 0; g < job->groups; ++g)
        transform_output(job, job->mprod + (size_t)co * job->tb + (size_t)g * LANES, job->mstride,
                         co, g);
}

#else

static void run_block(void *ctx, int block, int slot) { (void)ctx, (void)block, (void)slot; }
static void phase_input(void *ctx, int c, int slot) { (void)ctx, (void)c, (void)slot; }
static void phase_gemm(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void phase_output(void *ctx, int co, int slot) { (void)ctx, (void)co, (void)slot; }

#endif

/* Tiles, pairs, groups, blocks and the padded buffer's size for conv. */
static void plan(Job *job, const WinogradConv *conv)
{
    memset(job, 0, sizeof(*job));
    job->conv = conv;
    job->tiles_h = (conv->oh + TILE - 1) / TILE;
    job->tiles_w = (conv->ow + TILE - 1) / TILE;
    job->pairs_per_row = (job->tiles_w + 1) / 2;
    job->pairs = job->tiles_h * job->pairs_per_row;
    job->groups = (job->pairs + PAIRS - 1) / PAIRS;
    job->hp = TILE * job->tiles_h + 2;
    job->wp = 2 * TILE * job->pairs_per_row + 4; /* a pair's loads reach 4 j + 11 */
    /* TB = block_groups * 8 columns, a multiple of NR = 24; blocks of ~192 KiB of V + M */
    long per_column = (long)POINTS * (conv->c + conv->mp) * (long)sizeof(float);
    int units = (int)((192L * 1024) / (per_column * NR));
    job->block_groups = 3 * (units < 1 ? 1 : units);
    if (job->block_groups > job->groups + 2)
        job->block_groups = 3 * ((job->groups + 2) / 3);
    job->blocks = (job->groups + job->block_groups - 1) / job->block_groups;
}

/* Block schedule, or (few blocks) the three phases over one block of all groups. */
static int run_job(Job *job, int threads)
{
    const WinogradConv *conv = job->conv;
    const int one_block = job->blocks < 2 * threads && threads > 1;
    if (one_block) {
        job->block_groups = 3 * ((job->groups + 2) / 3);
        job->blocks = 1;
    }
    job->tb = (size_t)job->block_groups * LANES;
    job->vstride = point_stride(conv->c, job->tb);
    job->mstride = point_stride(conv->mp, job->tb);
    for (int slot = 0; slot < (one_block ? 1 : threads); ++slot)
        if (!pool_scratch(slot, 0, POINTS * job->vstride) ||
            !pool_scratch(slot, 1, POINTS * job->mstride))
            return -1;
    job->xp = pool_scratch(0, 2, (size_t)conv->c * job->hp * job->wp + LANES);
    if (!job->xp)
        return -1;
    pool_run(pad_channel, job, conv->c, threads);
    if (!one_block) {
        pool_run(run_block, job, job->blocks, threads);
        return 0;
    }
    job->v = pool_scratch(0, 0, POINTS * job->vstride);
    job->mprod = pool_scratch(0, 1, POINTS * job->mstride);
    pool_run(phase_input, job, conv->c, threads);
    pool_run(phase_gemm, job, POINTS * ((conv->mp + GEMM_ROWS - 1) / GEMM_ROWS), threads);
    pool_run(phase_output, job, conv->m, threads);
    return 0;
}

int winograd_f43(const WinogradConv *conv, int threads)
{
    Job job;
    plan(&job, conv);
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    if (threads < 1)
        threads = 1;
    pool_enter();
    int status = run_job(&job, threads);
    pool_leave();
    return status;
}
