/* Row-wise float32 kernels and their Python bindings: LayerNormalization (ONNX
 * LayerNormalization-17 with float32 statistics) and Softmax over the last axis with an
 * optional additive mask (ONNX Add then Softmax-13), rows shared between the pool's threads.
 *
 * LayerNormalization: mean = sum / L with the sum in double; the deviations x - mean use the
 * mean as a float32 value plus its float32 rounding error (so they are nearly as exact as in
 * double, even for large offsets); variance = the mean of squared deviations, summed in double;
 * y = (x - mean) * inv_std * scale + bias.
 *
 * Softmax: y = exp(s - max(s)) / sum(exp(s - max(s))) with s = x + mask in float32, as the
 * numpy code does it: NaN anywhere in a row makes the row NaN, -inf entries give 0, a row
 * entirely -inf (or holding +inf) gives NaN; with nan_to_zero such rows become 0. */
#include <math.h>

#include "bindings.h"

/* Items of about this many floats: enough to pay for handing them out, small enough to
 * balance two threads on a few hundred rows. */
enum { ITEM_FLOATS = 8192 };
/* Work under this many floats runs on the caller's thread alone: waking a sleeping worker
 * costs more than it saves. */
static const double SMALL_ROWS_WORK = 1 << 15;

typedef struct {
    const float *x, *scale, *bias;
    size_t rows, len, rows_per_item;
    float epsilon;
    float *y, *mean, *inv_std;
} LayerNorm;

typedef struct {
    const float *x, *mask;
    size_t rows, len, mask_rows, rows_per_item;
    int nan_to_zero;
    float *y;
} Softmax;

#ifdef FERRY_X86

/* Sums in double over four accumulators: independent chains, so that an add's latency is
 * not paid for every vector. */
typedef struct {
    __m256d a, b, c, d;
} Sums;

/* The 8 floats of v (the second of a pair when `second`) added to s, in double. */
TARGET static inline void add_wide(Sums *s, __m256 v, int second)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (second)
        s->c = _mm256_add_pd(s->c, lo), s->d = _mm256_add_pd(s->d, hi);
    else
        s->a = _mm256_add_pd(s->a, lo), s->b = _mm256_add_pd(s->b, hi);
}

/* The squares of the 8 floats of v added to s, in double. */
TARGET static inline void add_squares_wide(Sums *s, __m256 v, int second)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (second)
        s->c = _mm256_fmadd_pd(lo, lo, s->c), s->d = _mm256_fmadd_pd(hi, hi, s->d);
    else
        s->a = _mm256_fmadd_pd(lo, lo, s->a), s->b = _mm256_fmadd_pd(hi, hi, s->b);
}

TARGET static inline double total(const Sums *s)
{
    __m256d v = _mm256_add_pd(_mm256_add_pd(s->a, s->b), _mm256_add_pd(s->c, s->d));
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

TARGET static inline float max_lanes(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

/* exp of 8 floats: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in a 12-bit head, so n * head
 * and x - n * head are exact, and a tail), exp(r) by its Taylor series to r^7 (truncation
 * under 0.1 ulp), times 2^n built in the exponent bits. Results that would be subnormal are 0
 * (those lanes compute exp(0) meanwhile: making a subnormal costs a microcode assist on many
 * CPUs, and masked softmax scores are often -inf); above ln(FLT_MAX) they overflow to inf;
 * NaN stays NaN. With `nonpositive` (a constant), x is known to be <= 0 or NaN, as in softmax,
 * and the steps for large exponents are left out. */
TARGET static inline __attribute__((always_inline)) __m256 exp8_of(__m256 x, const int nonpositive)
{
    const __m256 below = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365447f), _CMP_LT_OQ); /* ln(FLT_MIN) */
    /* min returns its second operand when one is NaN: x stays NaN */
    __m256 v = _mm256_andnot_ps(below, nonpositive ? x : _mm256_min_ps(_mm256_set1_ps(88.8f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i k = _mm256_cvtps_epi32(n);
    if (nonpositive) {
        p = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23)));
    } else { /* n is at most 128 (2^128 is not a float): 2^min(n, 127), times 2 where n is 128 */
        __m256i capped = _mm256_min_epi32(k, _mm256_set1_epi32(127));
        __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(capped, _mm256_set1_epi32(127)), 23));
        p = _mm256_mul_ps(p, scale);
        __m256 twice = _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, capped));
        p = _mm256_blendv_ps(p, _mm256_add_ps(p, p), twice);
    }
    return _mm256_andnot_ps(below, p);
}

TARGET static inline __m256 exp8(__m256 x) { return exp8_of(x, 0); }

/* exp of 8 floats that are <= 0 or NaN. */
TARGET static inline __m256 exp8_nonpositive(__m256 x) { return exp8_of(x, 1); }

TARGET static void layer_norm_row(const LayerNorm *a, size_t row)
{
    const float *x = a->x + row * a->len;
    float *y = a->y + row * a->len;
    const int len = (int)a->len, tail = len % 8, body = len - tail;
    const __m256i last = lane_mask(tail);
    Sums sums = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int i = 0;
    for (; i + 16 <= body; i += 16) {
        add_wide(&sums, _mm256_loadu_ps(x + i), 0);
        add_wide(&sums, _mm256_loadu_ps(x + i + 8), 1);
    }
    for (; i < body; i += 8)
        add_wide(&sums, _mm256_loadu_ps(x + i), 0);
    if (tail)
        add_wide(&sums, _mm256_maskload_ps(x + i, last), 1);
    const double mean = total(&sums) / len;
    const float mean_f = (float)mean, mean_error = (float)(mean - (double)mean_f);
    const __m256 m = _mm256_set1_ps(mean_f), e = _mm256_set1_ps(mean_error);
    sums.a = sums.b = sums.c = sums.d = _mm256_setzero_pd();
    for (i = 0; i + 16 <= body; i += 16) {
        add_squares_wide(&sums, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), e), 0);
        add_squares_wide(&sums, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), m), e), 1);
    }
    for (; i < body; i += 8)
        add_squares_wide(&sums, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), e), 0);
    if (tail) {
        __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, last), m), e);
        add_squares_wide(&sums, _mm256_and_ps(d, _mm256_castsi256_ps(last)), 1);
    }
    const double variance = total(&sums) / len;
    const float inv_std = (float)(1.0 / sqrt(variance + (double)a->epsilon));
    a->mean[row] = mean_f;
    a->inv_std[row] = inv_std;
    const __m256 k = _mm256_set1_ps(inv_std), zero = _mm256_setzero_ps();
    for (i = 0; i < len; i += 8) {
        const int whole = i < body;
        __m256 xv = whole ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, last);
        __m256 s = whole ? _mm256_loadu_ps(a->scale + i) : _mm256_maskload_ps(a->scale + i, last);
        __m256 b = !a->bias ? zero : whole ? _mm256_loadu_ps(a->bias + i) : _mm256_maskload_ps(a->bias + i, last);
        __m256 v = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(xv, m), e), k), s, b);
        if (whole)
            _mm256_storeu_ps(y + i, v);
        else
            _mm256_maskstore_ps(y + i, last, v);
    }
}

TARGET static void layer_norm_item(void *ctx, int item, int slot)
{
    (void)slot;
    const LayerNorm *a = ctx;
    const size_t first = (size_t)item * a->rows_per_item;
    const size_t end = first + a->rows_per_item < a->rows ? first + a->rows_per_item : a->rows;
    for (size_t row = first; row < end; ++row)
        layer_norm_row(a, row);
}

/* x[i] (+ mask[i]) for the 8 lanes at i, the lanes of `valid` only (others 0). */
TARGET static inline __m256 scores8(const float *x, const float *mask, int i, int whole, __m256i valid)
{
    __m256 v = whole ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, valid);
    if (mask)
        v = _mm256_add_ps(v, whole ? _mm256_loadu_ps(mask + i) : _mm256_maskload_ps(mask + i, valid));
    return v;
}

/* Row `row` of y, with mask row `mask_row` (when there is a mask). */
TARGET static void softmax_row(const Softmax *a, size_t row, size_t mask_row)
{
    const float *x = a->x + row * a->len;
    const float *mask = a->mask ? a->mask + mask_row * a->len : NULL;
    float *y = a->y + row * a->len;
    const int len = (int)a->len, body = len - len % 8;
    const __m256i last = lane_mask(len % 8);
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
    __m256 top0 = minus_inf, top1 = minus_inf;
    int i = 0;
    for (; i + 16 <= body; i += 16) {
        top0 = _mm256_max_ps(top0, scores8(x, mask, i, 1, last));
        top1 = _mm256_max_ps(top1, scores8(x, mask, i + 8, 1, last));
    }
    for (; i < body; i += 8)
        top0 = _mm256_max_ps(top0, scores8(x, mask, i, 1, last));
    if (i < len)
        top1 = _mm256_max_ps(top1, _mm256_blendv_ps(minus_inf, scores8(x, mask, i, 0, last), _mm256_castsi256_ps(last)));
    /* a NaN lost by max here shows in the sum */
    const __m256 shift = _mm256_set1_ps(max_lanes(_mm256_max_ps(top0, top1)));
    /* the sum: in float32 over blocks of 128 values (16 per lane, values in [0, 1]), of blocks in double */
    Sums sums = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    __m256 part0 = zero, part1 = zero;
    int pending = 0;
    for (i = 0; i + 16 <= body; i += 16) {
        __m256 v0 = exp8_nonpositive(_mm256_sub_ps(scores8(x, mask, i, 1, last), shift));
        __m256 v1 = exp8_nonpositive(_mm256_sub_ps(scores8(x, mask, i + 8, 1, last), shift));
        _mm256_storeu_ps(y + i, v0);
        _mm256_storeu_ps(y + i + 8, v1);
        part0 = _mm256_add_ps(part0, v0);
        part1 = _mm256_add_ps(part1, v1);
        if (++pending == 8) {
            add_wide(&sums, part0, 0);
            add_wide(&sums, part1, 1);
            part0 = part1 = zero;
            pending = 0;
        }
    }
    for (; i < len; i += 8) { /* at most one whole vector and the tail */
        __m256 v = exp8_nonpositive(_mm256_sub_ps(scores8(x, mask, i, i < body, last), shift));
        if (i < body) {
            _mm256_storeu_ps(y + i, v);
        } else {
            _mm256_maskstore_ps(y + i, last, v);
            v = _mm256_and_ps(v, _mm256_castsi256_ps(last));
        }
        part0 = _mm256_add_ps(part0, v);
    }
    add_wide(&sums, part0, 0);
    add_wide(&sums, part1, 1);
    const double sum = total(&sums);
    if (isnan(sum) && a->nan_to_zero) {
        memset(y, 0, sizeof(float) * a->len);
        return;
    }
    const __m256 k = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i < body; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), k));
    if (i < len)
        _mm256_maskstore_ps(y + i, last, _mm256_mul_ps(_mm256_maskload_ps(y + i, last), k));
}

TARGET static void softmax_item(void *ctx, int item, int slot)
{
    (void)slot;
    const Softmax *a = ctx;
    const size_t first = (size_t)item * a->rows_per_item;
    const size_t end = first + a->rows_per_item < a->rows ? first + a->rows_per_item : a->rows;
    for (size_t row = first, mask_row = first % a->mask_rows; row < end; ++row) {
        softmax_row(a, row, mask_row);
        if (++mask_row == a->mask_rows)
            mask_row = 0;
    }
}

TARGET static void exp_floats(const float *x, float *y, size_t count)
{
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < count) {
        const __m256i last = lane_mask((int)(count - i));
        _mm256_maskstore_ps(y + i, last, exp8(_mm256_maskload_ps(x + i, last)));
    }
}

#else

static void layer_norm_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void softmax_item(void *ctx, int item, int slot) { (void)ctx, (void)item, (void)slot; }
static void exp_floats(const float *x, float *y, size_t count) { (void)x, (void)y, (void)count; }

#endif

/* Rows of len floats per item, and the items of `rows` rows. */
static size_t rows_per_item(size_t rows, size_t len, int *items)
{
    size_t per = len >= ITEM_FLOATS ? 1 : ITEM_FLOATS / len;
    if (rows / per >= (size_t)1 << 30)
        per = rows / ((size_t)1 << 30) + 1;
    *items = (int)((rows + per - 1) / per);
    return per;
}

/* Run task over items on the pool: threads capped by the items, one thread for small work. */
static void run_rows(pool_task task, void *ctx, int items, size_t floats, int threads)
{
    if ((double)floats < SMALL_ROWS_WORK || threads < 1)
        threads = 1;
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    pool_enter();
    pool_run(task, ctx, items, threads);
    pool_leave();
}

static int layer_norm_rows(LayerNorm *a, int threads)
{
    int items;
    a->rows_per_item = rows_per_item(a->rows, a->len, &items);
    run_rows(layer_norm_item, a, items, a->rows * a->len, threads);
    return 0;
}

static int softmax_rows(Softmax *a, int threads)
{
    int items;
    a->rows_per_item = rows_per_item(a->rows, a->len, &items);
    run_rows(softmax_item, a, items, 2 * a->rows * a->len, threads);
    return 0;
}

static int run_exp(const float *x, float *y, size_t count)
{
    exp_floats(x, y, count);
    return 0;
}

/* 0 when rows and len are positive and the CPU runs the kernels; else -1 with the error set. */
static int check_rows(const char *name, Py_ssize_t rows, Py_ssize_t len)
{
    if (rows < 1 || len < 1 || len > 0x7fffffff) {
        PyErr_Format(PyExc_ValueError, "%s: expected at least one row of 1 to 2^31 - 1 floats, got %zd rows of %zd",
                     name, rows, len);
        return -1;
    }
    if (!cpu_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "ferry's native kernels need an x86-64 CPU with AVX2 and FMA");
        return -1;
    }
    return 0;
}

static PyObject *py_layer_norm(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *x_obj, *scale_obj, *bias_obj, *y_obj, *mean_obj, *inv_std_obj;
    Py_ssize_t rows, len;
    LayerNorm a;
    memset(&a, 0, sizeof(a));
    int threads;
    if (!PyArg_ParseTuple(args, "OnnOOfOOOi", &x_obj, &rows, &len, &scale_obj, &bias_obj, &a.epsilon, &y_obj,
                          &mean_obj, &inv_std_obj, &threads))
        return NULL;
    Buffer b[6];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (check_rows("layer_norm", rows, len) ||
        get_buffer(x_obj, &b[0], 0, "x") || floats_at_least(&b[0], rows * len, "x") ||
        get_buffer(scale_obj, &b[1], 0, "scale") || floats_at_least(&b[1], len, "scale") ||
        optional_floats(bias_obj, &b[2], len, "bias", &a.bias) ||
        get_buffer(y_obj, &b[3], 1, "y") || floats_at_least(&b[3], rows * len, "y") ||
        get_buffer(mean_obj, &b[4], 1, "mean") || floats_at_least(&b[4], rows, "mean") ||
        get_buffer(inv_std_obj, &b[5], 1, "inv_std") || floats_at_least(&b[5], rows, "inv_std"))
        goto done;
    a.x = b[0].view.buf;
    a.scale = b[1].view.buf;
    a.y = b[3].view.buf;
    a.mean = b[4].view.buf;
    a.inv_std = b[5].view.buf;
    a.rows = (size_t)rows;
    a.len = (size_t)len;
    RUN_WITHOUT_GIL(result, layer_norm_rows(&a, threads));
done:
    release(b, 6);
    return result;
}

static PyObject *py_softmax(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *x_obj, *mask_obj, *y_obj;
    Py_ssize_t rows, len, mask_rows;
    Softmax a;
    memset(&a, 0, sizeof(a));
    int threads;
    if (!PyArg_ParseTuple(args, "OnnOnpOi", &x_obj, &rows, &len, &mask_obj, &mask_rows, &a.nan_to_zero, &y_obj,
                          &threads))
        return NULL;
    Buffer b[3];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (check_rows("softmax", rows, len))
        goto done;
    if (mask_obj != Py_None && mask_rows < 1) {
        PyErr_Format(PyExc_ValueError, "softmax: expected at least one mask row, got %zd", mask_rows);
        goto done;
    }
    if (get_buffer(x_obj, &b[0], 0, "x") || floats_at_least(&b[0], rows * len, "x") ||
        optional_floats(mask_obj, &b[1], mask_rows * len, "mask", &a.mask) ||
        get_buffer(y_obj, &b[2], 1, "y") || floats_at_least(&b[2], rows * len, "y"))
        goto done;
    a.x = b[0].view.buf;
    a.y = b[2].view.buf;
    a.rows = (size_t)rows;
    a.len = (size_t)len;
    a.mask_rows = a.mask ? (size_t)mask_rows : 1;
    RUN_WITHOUT_GIL(result, softmax_rows(&a, threads));
done:
    release(b, 3);
    return result;
}

static PyObject *py_exp(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *x_obj, *y_obj;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OOn", &x_obj, &y_obj, &count))
        return NULL;
    Buffer b[2];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (check_rows("exp", 1, count) ||
        get_buffer(x_obj, &b[0], 0, "x") || floats_at_least(&b[0], count, "x") ||
        get_buffer(y_obj, &b[1], 1, "y") || floats_at_least(&b[1], count, "y"))
        goto done;
    RUN_WITHOUT_GIL(result, run_exp(b[0].view.buf, b[1].view.buf, (size_t)count));
done:
    release(b, 2);
    return result;
}

PyMethodDef ferry_row_methods[] = {
    {"layer_norm", py_layer_norm, METH_VARARGS,
     "layer_norm(x, rows, L, scale, bias, epsilon, y, mean, inv_std, threads): each float32 row of x "
     "normalized (mean 0, variance 1) into y, times scale (L), + bias (L or None); mean and "
     "1 / sqrt(variance + epsilon) of each row into mean and inv_std (rows)."},
    {"softmax", py_softmax, METH_VARARGS,
     "softmax(x, rows, L, mask, mask_rows, nan_to_zero, y, threads): y row i = softmax of float32 "
     "x row i + mask row i % mask_rows (mask None: no mask); NaN rows become 0 with nan_to_zero."},
    {"exp", py_exp, METH_VARARGS,
     "exp(x, y, count): y = exp(x) for count float32 values (subnormal results are 0)."},
    {NULL, NULL, 0, NULL},
};
