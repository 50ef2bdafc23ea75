/* Winograd F(4x4, 3x3) convolution of one float32 image, for x86-64 CPUs with AVX2 and FMA.
 *
 * ONNX Conv semantics for the case it covers: 2-D cross-correlation, 3x3 kernel, stride 1,
 * dilation 1, one group, zero padding. Every 4x4 output tile comes from a 6x6 input tile as
 *     Y = AT [ sum_c U[c] * (BT d[c] B) ] A,    U = G w G^T (packed once by the caller),
 * on the interpolation points 0, 1, -1, 2, -2 (Lavin & Gray 2016). The matrices below are
 * those points' Toom-Cook matrices; ferry/runtime/kernels/native_conv.py derives G from the
 * same points and a test checks that its AT and BT equal the constants written out here.
 *
 * Work: the image is first copied into a zero-padded buffer covering whole tiles. Tiles are
 * taken in "groups" of up to 8 horizontally adjacent tiles of one tile row (one AVX lane
 * per tile) and groups in blocks; a block's transformed input V (36, C, TB) and products
 * M (36, Mp, TB) stay in the core's cache. Per block: input transform (contiguous loads
 * transposed in registers), 36 small GEMMs U[p] (Mp x C) @ V[p] (C x TB) with the 4x24
 * register tile of native.h, then the output transform, + bias, + residual, activation,
 * stored row by row with the tiles transposed back into contiguous pixels.
 */
#include <stdlib.h>
#include <string.h>

#include "native.h"

enum { TILE = 4, PATCH = 6, POINTS = 36, LANES = 8 };

typedef struct {
    const WinogradConv *conv;
    int tiles_h, tiles_w, groups_per_row, groups, blocks, block_groups, hp, wp;
    float *xp; /* padded image, c x hp x wp */
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

/* Transformed input of one channel for the group of 8 tiles whose first patch starts at
 * `base`; writes V[p][lane] for p < 36 at v + p * pstride. Lanes hold the tiles in the
 * order 0, 2, 4, 6, 1, 3, 5, 7 (what in-lane transposes of contiguous loads give);
 * store_row undoes it. A patch row of the 8 tiles is line[4 j + n], n < 6: two sets of four
 * loads (offsets 0 and 4) transposed within 128-bit halves. */
TARGET static void transform_input(const float *base, int wp, float *v, size_t pstride)
{
    __m256 rows[6][6];
    for (int r = 0; r < PATCH; ++r) {
        const float *line = base + (size_t)r * wp;
        __m256 d[6], high[4];
        transpose_halves(_mm256_loadu_ps(line), _mm256_loadu_ps(line + 8),
                         _mm256_loadu_ps(line + 16), _mm256_loadu_ps(line + 24), d);
        transpose_halves(_mm256_loadu_ps(line + 4), _mm256_loadu_ps(line + 12),
                         _mm256_loadu_ps(line + 20), _mm256_loadu_ps(line + 28), high);
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

/* One output row of a group: px[j] = pixel j of the 8 tiles (lanes in the order 0, 2, 4,
 * 6, 1, 3, 5, 7), stored as 32 contiguous pixels, the first `valid` of them. */
TARGET static void store_row(const Epilogue *e, const __m256 px[4], const float *res, float *out,
                             int valid)
{
    __m256 q[4]; /* after the in-lane transpose: tiles (0, 1), (2, 3), (4, 5), (6, 7) */
    transpose_halves(px[0], px[1], px[2], px[3], q);
    for (int i = 0; i < 4; ++i) {
        int count = valid - 8 * i;
        if (count <= 0)
            break;
        if (count >= 8) {
            __m256 v = q[i];
            if (res)
                v = _mm256_add_ps(v, _mm256_loadu_ps(res + 8 * i));
            _mm256_storeu_ps(out + 8 * i, activate8(e, v));
        } else {
            __m256i mask = lane_mask(count);
            __m256 v = q[i];
            if (res)
                v = _mm256_add_ps(v, _mm256_maskload_ps(res + 8 * i, mask));
            _mm256_maskstore_ps(out + 8 * i, mask, activate8(e, v));
        }
    }
}

/* Output transform of channel co for one group (its products at mprod + p * pstride). */
TARGET static void transform_output(const WinogradConv *conv, const float *mprod, size_t pstride,
                                    int co, int ti, int tj0)
{
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
    const size_t plane = (size_t)conv->oh * conv->ow;
    const int left = conv->ow - TILE * tj0;
    const int valid = left < LANES * TILE ? left : LANES * TILE;
    for (int i = 0; i < TILE; ++i) {
        int row = TILE * ti + i;
        if (row >= conv->oh)
            break;
        __m256 px[4];
        output_1d(cols[i], px);
        for (int j = 0; j < TILE; ++j)
            px[j] = _mm256_add_ps(px[j], bias);
        size_t at = (size_t)co * plane + (size_t)row * conv->ow + (size_t)TILE * tj0;
        store_row(e, px, e->residual ? e->residual + at : NULL, conv->y + at, valid);
    }
}

TARGET static void run_block(void *ctx, int block, int slot)
{
    const Job *job = ctx;
    const WinogradConv *conv = job->conv;
    const int g0 = block * job->block_groups;
    const int g1 = g0 + job->block_groups < job->groups ? g0 + job->block_groups : job->groups;
    const size_t tb = (size_t)job->block_groups * LANES; /* row length of V and M */
    const size_t vstride = point_stride(conv->c, tb), mstride = point_stride(conv->mp, tb);
    float *v = pool_scratch(slot, 0, POINTS * vstride);
    float *mprod = pool_scratch(slot, 1, POINTS * mstride);
    if (!v || !mprod)
        abort(); /* sized by winograd_f43 before the parallel part: cannot fail here */
    const size_t plane = (size_t)job->hp * job->wp;
    for (int c = 0; c < conv->c; ++c)
        for (int g = g0; g < g1; ++g) {
            int ti = g / job->groups_per_row, tj0 = (g % job->groups_per_row) * LANES;
            const float *base = job->xp + c * plane + (size_t)TILE * ti * job->wp + TILE * tj0;
            transform_input(base, job->wp, v + (size_t)c * tb + (g - g0) * LANES, vstride);
        }
    const int columns = (g1 - g0) * LANES;
    for (int p = 0; p < POINTS; ++p) {
        const float *up = conv->u + (size_t)p * conv->mp * conv->c;
        for (int cb = 0; cb < conv->mp / MR; ++cb)
            for (int n = 0; n < columns; n += NR)
                gemm_4x24(conv->c, up + (size_t)cb * conv->c * MR, v + p * vstride + n, tb,
                          mprod + p * mstride + (size_t)cb * MR * tb + n, tb, 0);
    }
    for (int co = 0; co < conv->m; ++co)
        for (int g = g0; g < g1; ++g) {
            int ti = g / job->groups_per_row, tj0 = (g % job->groups_per_row) * LANES;
            transform_output(conv, mprod + (size_t)co * tb + (g - g0) * LANES, mstride, co, ti, tj0);
        }
}

#else

static void run_block(void *ctx, int block, int slot)
{
    (void)ctx, (void)block, (void)slot;
}

#endif

/* Tiles, groups, blocks and the padded buffer's size for conv. */
static void plan(Job *job, const WinogradConv *conv)
{
    job->conv = conv;
    job->tiles_h = (conv->oh + TILE - 1) / TILE;
    job->tiles_w = (conv->ow + TILE - 1) / TILE;
    job->groups_per_row = (job->tiles_w + LANES - 1) / LANES;
    job->groups = job->tiles_h * job->groups_per_row;
    job->hp = TILE * job->tiles_h + 2;
    job->wp = TILE * LANES * job->groups_per_row + 4; /* loads reach 4 j + 7 for j < 8 */
    /* TB = block_groups * 8 columns, a multiple of NR = 24; blocks of ~192 KiB of V + M */
    long per_column = (long)POINTS * (conv->c + conv->mp) * (long)sizeof(float);
    int units = (int)((192L * 1024) / (per_column * NR));
    job->block_groups = 3 * (units < 1 ? 1 : units);
    if (job->block_groups > job->groups + 2)
        job->block_groups = 3 * ((job->groups + 2) / 3);
    job->blocks = (job->groups + job->block_groups - 1) / job->block_groups;
}

int winograd_f43(const WinogradConv *conv, int threads)
{
    Job job;
    plan(&job, conv);
    if (threads > job.blocks)
        threads = job.blocks;
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    if (threads < 1)
        threads = 1;
    const size_t tb = (size_t)job.block_groups * LANES;
    int status = 0;
    pool_enter();
    for (int slot = 0; slot < threads && !status; ++slot)
        if (!pool_scratch(slot, 0, POINTS * point_stride(conv->c, tb)) ||
            !pool_scratch(slot, 1, POINTS * point_stride(conv->mp, tb)))
            status = -1;
    job.xp = status ? NULL : pool_scratch(0, 2, (size_t)conv->c * job.hp * job.wp + LANES);
    if (job.xp) {
        pool_run(pad_channel, &job, conv->c, threads);
        pool_run(run_block, &job, job.blocks, threads);
    } else {
        status = -1;
    }
    pool_leave();
    return status;
}
