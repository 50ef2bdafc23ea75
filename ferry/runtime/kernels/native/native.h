/* Shared declarations of ferry's compiled kernels (the optional extension
 * ferry.runtime.kernels._native). Kernels are written for x86-64 with AVX2 and FMA and
 * compiled per function with the target attribute, so the module loads on any CPU and
 * answers cpu_supported() before anything runs. */
#ifndef FERRY_NATIVE_H
#define FERRY_NATIVE_H

#include <stddef.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FERRY_X86 1
#include <immintrin.h>
#define TARGET __attribute__((target("avx2,fma")))
#endif

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_LEAKY = 2, ACT_CLIP = 3, ACT_GELU = 4 };
enum { MR = 4, NR = 24 }; /* GEMM register tile: 4 rows (output channels) x 24 columns */

/* The epilogue of a convolution or matrix product: + bias[row], + column_bias[column],
 * + residual, activation. */
typedef struct {
    const float *bias;        /* per output row, or NULL */
    const float *column_bias; /* per output column (GEMM only), or NULL */
    const float *residual;    /* shaped like the output, or NULL */
    int act;
    float alpha, beta;
} Epilogue;

int cpu_supported(void);

/* Thread pool. A kernel brackets its work with pool_enter() and pool_leave(), so that
 * kernels called from several Python threads run one after the other. Inside,
 * pool_run(task, ctx, items, threads) calls task(ctx, item, slot) for item in [0, items) on
 * up to `threads` threads (the caller's is slot 0); items are taken dynamically, so a thread
 * slowed by another process does fewer of them. If workers cannot be started, the
 * caller's thread does all items. */
typedef void (*pool_task)(void *ctx, int item, int slot);
void pool_enter(void);
void pool_leave(void);
void pool_run(pool_task task, void *ctx, int items, int threads);
/* Scratch memory of `slot`, at least `floats` floats, 64-byte aligned, kept between calls;
 * which = 0 to 3 names one of four buffers per slot. NULL when out of memory. Only
 * between pool_enter() and pool_leave(), and only for slots < the threads of pool_run. */
float *pool_scratch(int slot, int which, size_t floats);
enum { POOL_MAX_THREADS = 64 };

/* Y (m, oh, ow) = Winograd F(4x4, 3x3) conv of x (c, h, w); see winograd.c. */
typedef struct {
    const float *x;
    int c, h, w;
    const float *u; /* (36, mp / 4, c, 4) */
    int m, mp;
    float *y;
    int oh, ow, pad_top, pad_left;
    Epilogue epilogue;
} WinogradConv;
int winograd_f43(const WinogradConv *conv, int threads);

/* Y (m, n) = W (m, k) @ X (k, n) + epilogue; rows of Y (and of the residual, shaped like
 * Y) are ldy floats apart; see gemm.c. W comes packed (mp / 4, k, 4), or as plain rows `a`
 * (m, k; lda floats apart) that the call packs itself. X comes as rows ldx floats apart, or
 * packed once as `xp`: panels of 24 columns (ceil(n / 24), k, 24), zeros past column n.
 * With batch > 1 (plain rows `a` and X only): `batch` products, matrix i at a + i a_stride,
 * x + i x_stride, y (and residual) + i y_stride. */
typedef struct {
    const float *w;
    const float *a;
    size_t lda;
    int m, mp, k;
    const float *x;
    const float *xp;
    int n;
    size_t ldx, ldy;
    int batch;
    size_t a_stride, x_stride, y_stride;
    float *y;
    Epilogue epilogue;
} PackedGemm;
int packed_gemm(const PackedGemm *gemm, int threads);

/* A 2-D window over c planes of h x w: kernel, strides, dilations, top/left padding and the
 * output size (ONNX Conv/MaxPool geometry); output rows start at row0 (im2col builds the
 * matrix a block of output rows at a time; MaxPool always starts at 0). */
typedef struct {
    const float *x; /* (c, h, w) */
    int c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, row0;
    float *out;
} Window2d;
/* out (c * kh * kw, oh * ow) = the im2col matrix of x for output rows row0 .. row0 + oh - 1;
 * see im2col.c. */
int im2col(const Window2d *a, int threads);
/* out (c, oh, ow) = max over each window of each plane of x; see pool2d.c. */
int max_pool_2d(const Window2d *a, int threads);

#ifdef FERRY_X86
/* c (4 x 24 as 4 rows of 3 vectors) += u (k x 4, packed) @ v (k x 24, row stride ldv).
 * The accumulators are named locals: an indexed array in the loop would live in memory. */
TARGET static inline __attribute__((always_inline)) void tile_4x24(int k, const float *u,
                                                                  const float *v, size_t ldv,
                                                                  __m256 c[12])
{
    __m256 c00 = c[0], c01 = c[1], c02 = c[2], c10 = c[3], c11 = c[4], c12 = c[5];
    __m256 c20 = c[6], c21 = c[7], c22 = c[8], c30 = c[9], c31 = c[10], c32 = c[11];
    for (int i = 0; i < k; ++i, u += MR, v += ldv) {
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16);
        __m256 a = _mm256_broadcast_ss(u);
        c00 = _mm256_fmadd_ps(a, v0, c00);
        c01 = _mm256_fmadd_ps(a, v1, c01);
        c02 = _mm256_fmadd_ps(a, v2, c02);
        a = _mm256_broadcast_ss(u + 1);
        c10 = _mm256_fmadd_ps(a, v0, c10);
        c11 = _mm256_fmadd_ps(a, v1, c11);
        c12 = _mm256_fmadd_ps(a, v2, c12);
        a = _mm256_broadcast_ss(u + 2);
        c20 = _mm256_fmadd_ps(a, v0, c20);
        c21 = _mm256_fmadd_ps(a, v1, c21);
        c22 = _mm256_fmadd_ps(a, v2, c22);
        a = _mm256_broadcast_ss(u + 3);
        c30 = _mm256_fmadd_ps(a, v0, c30);
        c31 = _mm256_fmadd_ps(a, v1, c31);
        c32 = _mm256_fmadd_ps(a, v2, c32);
    }
    c[0] = c00, c[1] = c01, c[2] = c02, c[3] = c10, c[4] = c11, c[5] = c12;
    c[6] = c20, c[7] = c21, c[8] = c22, c[9] = c30, c[10] = c31, c[11] = c32;
}

/* c = the 4 x 24 tile at out (row stride ldo), or zeros. */
TARGET static inline __attribute__((always_inline)) void load_4x24(const float *out, size_t ldo,
                                                                  int load, __m256 c[12])
{
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < 3; ++j)
            c[3 * r + j] = load ? _mm256_loadu_ps(out + r * ldo + 8 * j) : _mm256_setzero_ps();
}

/* out (4 x 24, row stride ldo) = [out +] u (k x 4, packed) @ v (k x 24, row stride ldv). */
TARGET static inline void gemm_4x24(int k, const float *u, const float *v, size_t ldv, float *out,
                                    size_t ldo, int accumulate)
{
    __m256 c[12];
    load_4x24(out, ldo, accumulate, c);
    tile_4x24(k, u, v, ldv, c);
    for (int r = 0; r < MR; ++r)
        for (int j = 0; j < 3; ++j)
            _mm256_storeu_ps(out + r * ldo + 8 * j, c[3 * r + j]);
}

/* erf(u) ~= u P(u^2) / Q(u^2) for |u| <= 3.92, +-1 beyond: the fit of
 * tools/gen_erf_rational.py, also used by the numpy GELU (ferry/runtime/kernels/_activation.py). */
static const float ERF_P[6] = {1.128379150092745f, 0.1899124464377192f, 0.052666260748970656f,
                               0.0037413491968694102f, 0.00028374295877328995f, 2.044658584998693e-06f};
static const float ERF_Q[6] = {1.0f, 0.5016383584639699f, 0.11388971346793163f, 0.014919053533191416f,
                               0.0011556850159590362f, 3.7979556925513136e-05f};

/* x (1 + erf(x / sqrt 2)) / 2 on 8 values (NaN stays NaN). */
TARGET static inline __m256 gelu8(__m256 x)
{
    /* max/min return their second operand when one is NaN: NaN goes through the clip */
    __m256 u = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    u = _mm256_min_ps(_mm256_set1_ps(3.92f), _mm256_max_ps(_mm256_set1_ps(-3.92f), u));
    const __m256 s = _mm256_mul_ps(u, u);
    __m256 p = _mm256_set1_ps(ERF_P[5]), q = _mm256_set1_ps(ERF_Q[5]);
    for (int i = 4; i >= 0; --i) {
        p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(ERF_P[i]));
        q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(ERF_Q[i]));
    }
    const __m256 erf = _mm256_div_ps(_mm256_mul_ps(u, p), q);
    const __m256 half = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
    return _mm256_fmadd_ps(half, erf, half);
}

/* The activation of an epilogue on 8 values (NaN stays NaN, as in numpy), GELU aside. */
TARGET static inline __m256 activate8(const Epilogue *e, __m256 v)
{
    switch (e->act) {
    case ACT_RELU:
        return _mm256_max_ps(_mm256_setzero_ps(), v);
    case ACT_LEAKY: {
        __m256 negative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_mul_ps(v, _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_set1_ps(e->alpha), negative));
    }
    case ACT_CLIP:
        return _mm256_min_ps(_mm256_set1_ps(e->beta), _mm256_max_ps(_mm256_set1_ps(e->alpha), v));

    default:
        return v;
    }
}

/* activate8, GELU included: the GEMM's epilogues. Winograd's output transform uses
 * activate8 alone, so its hot loop does not carry GELU's inlined polynomial. */
TARGET static inline __m256 activate8_gemm(const Epilogue *e, __m256 v)
{
    return e->act == ACT_GELU ? gelu8(v) : activate8(e, v);
}

/* Lanes [0, count) as an AVX mask. */
TARGET static inline __m256i lane_mask(int count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The 4 x 24 tile c, finished (+ bias[r], + column_bias[j], + res, activation), into out
 * (row stride ldo; res, when not NULL, has the same stride). */
TARGET static inline __attribute__((always_inline)) void finish_4x24(const Epilogue *e,
                                                                    const float *bias,
                                                                    const float *column_bias,
                                                                    const float *res, float *out,
                                                                    size_t ldo, __m256 c[12])
{
    __m256 cb[3];
    for (int j = 0; j < 3; ++j)
        cb[j] = column_bias ? _mm256_loadu_ps(column_bias + 8 * j) : _mm256_setzero_ps();
    for (int r = 0; r < MR; ++r) {
        const __m256 b = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        for (int j = 0; j < 3; ++j) {
            __m256 v = _mm256_add_ps(_mm256_add_ps(c[3 * r + j], b), cb[j]);
            if (res)
                v = _mm256_add_ps(v, _mm256_loadu_ps(res + r * ldo + 8 * j));
            _mm256_storeu_ps(out + r * ldo + 8 * j, activate8_gemm(e, v));
        }
    }
}

/* out[0:count] = activation(row + bias + column_bias[0:count] + res[0:count]) (column_bias
 * and res may be NULL). */
TARGET static inline void store_row_finished(const Epilogue *e, float bias, const float *column_bias,
                                             const float *row, const float *res, float *out,
                                             int count)
{
    const __m256 b = _mm256_set1_ps(bias);
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(row + i), b);
        if (column_bias)
            v = _mm256_add_ps(v, _mm256_loadu_ps(column_bias + i));
        if (res)
            v = _mm256_add_ps(v, _mm256_loadu_ps(res + i));
        _mm256_storeu_ps(out + i, activate8_gemm(e, v));
    }
    if (i < count) {
        __m256i mask = lane_mask(count - i);
        __m256 v = _mm256_add_ps(_mm256_maskload_ps(row + i, mask), b);
        if (column_bias)
            v = _mm256_add_ps(v, _mm256_maskload_ps(column_bias + i, mask));
        if (res)
            v = _mm256_add_ps(v, _mm256_maskload_ps(res + i, mask));
        _mm256_maskstore_ps(out + i, mask, activate8_gemm(e, v));
    }
}
#endif

#endif
