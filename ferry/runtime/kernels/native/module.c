/* Python bindings of ferry's compiled kernels (module ferry.runtime.kernels._native).
 *
 * Arrays arrive through the buffer protocol (C-contiguous float32, checked here by size);
 * shapes are passed as integers by native_conv.py, which owns the ONNX-level checks. The
 * GIL is released while a kernel runs. */
#include "bindings.h"

static PyObject *py_winograd_f43(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *x_obj, *u_obj, *y_obj, *bias_obj, *residual_obj;
    WinogradConv conv = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "OiiiOiiOOOiiiiiffi", &x_obj, &conv.c, &conv.h, &conv.w, &u_obj,
                          &conv.m, &conv.mp, &bias_obj, &residual_obj, &y_obj, &conv.oh, &conv.ow,
                          &conv.pad_top, &conv.pad_left, &conv.epilogue.act, &conv.epilogue.alpha,
                          &conv.epilogue.beta, &threads))
        return NULL;
    Buffer b[5];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (conv.c < 1 || conv.h < 1 || conv.w < 1 || conv.m < 1 || conv.mp < conv.m || conv.mp % MR ||
        conv.oh < 1 || conv.ow < 1 || conv.pad_top < 0 || conv.pad_left < 0 ||
        conv.oh > conv.h + conv.pad_top + 64 || conv.ow > conv.w + conv.pad_left + 64) {
        PyErr_SetString(PyExc_ValueError, "winograd_f43: inconsistent sizes");
        goto done;
    }
    Py_ssize_t out = (Py_ssize_t)conv.m * conv.oh * conv.ow;
    if (get_buffer(x_obj, &b[0], 0, "x") || floats_at_least(&b[0], (Py_ssize_t)conv.c * conv.h * conv.w, "x") ||
        get_buffer(u_obj, &b[1], 0, "u") || floats_at_least(&b[1], (Py_ssize_t)36 * conv.mp * conv.c, "u") ||
        get_buffer(y_obj, &b[2], 1, "y") || floats_at_least(&b[2], out, "y") ||
        optional_floats(bias_obj, &b[3], conv.m, "bias", &conv.epilogue.bias) ||
        optional_floats(residual_obj, &b[4], out, "residual", &conv.epilogue.residual) ||
        check_epilogue(&conv.epilogue))
        goto done;
    if (conv.epilogue.act == ACT_GELU) { /* not in Winograd's output transform */
        PyErr_SetString(PyExc_ValueError, "winograd_f43: activation code 4 (GELU) is not supported");
        goto done;
    }
    conv.x = b[0].view.buf;
    conv.u = b[1].view.buf;
    conv.y = b[2].view.buf;
    RUN_WITHOUT_GIL(result, winograd_f43(&conv, threads));
done:
    release(b, 5);
    return result;
}

static PyObject *py_packed_gemm(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *w_obj, *x_obj, *y_obj, *bias_obj, *residual_obj;
    PackedGemm g = {0};
    Py_ssize_t ldx, ldy, y_offset;
    int threads;
    if (!PyArg_ParseTuple(args, "OiiiOinOnnOOiffi", &w_obj, &g.m, &g.mp, &g.k, &x_obj, &g.n, &ldx,
                          &y_obj, &y_offset, &ldy, &bias_obj, &residual_obj, &g.epilogue.act,
                          &g.epilogue.alpha, &g.epilogue.beta, &threads))
        return NULL;
    Buffer b[5];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (g.m < 1 || g.mp < g.m || g.mp % MR || g.k < 1 || g.n < 1 || ldx < g.n || ldy < g.n ||
        y_offset < 0) {
        PyErr_SetString(PyExc_ValueError, "packed_gemm: inconsistent sizes");
        goto done;
    }
    g.ldx = (size_t)ldx;
    g.ldy = (size_t)ldy;
    Py_ssize_t out = y_offset + (Py_ssize_t)(g.m - 1) * ldy + g.n;
    if (get_buffer(w_obj, &b[0], 0, "w") || floats_at_least(&b[0], (Py_ssize_t)g.mp * g.k, "w") ||
        get_buffer(x_obj, &b[1], 0, "x") || floats_at_least(&b[1], (Py_ssize_t)(g.k - 1) * ldx + g.n, "x") ||
        get_buffer(y_obj, &b[2], 1, "y") || floats_at_least(&b[2], out, "y") ||
        optional_floats(bias_obj, &b[3], g.m, "bias", &g.epilogue.bias) ||
        optional_floats(residual_obj, &b[4], out, "residual", &g.epilogue.residual) ||
        check_epilogue(&g.epilogue))
        goto done;
    g.w = b[0].view.buf;
    g.x = b[1].view.buf;
    g.y = (float *)b[2].view.buf + y_offset;
    if (g.epilogue.residual)
        g.epilogue.residual += y_offset;
    RUN_WITHOUT_GIL(result, packed_gemm(&g, threads));
done:
    release(b, 5);
    return result;
}

static PyObject *py_gemm_rows(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *a_obj, *panels_obj, *y_obj, *bias_obj, *residual_obj;
    PackedGemm g = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "OiiOiOOOiffi", &a_obj, &g.m, &g.k, &panels_obj, &g.n, &y_obj,
                          &bias_obj, &residual_obj, &g.epilogue.act, &g.epilogue.alpha,
                          &g.epilogue.beta, &threads))
        return NULL;
    Buffer b[5];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (g.m < 1 || g.k < 1 || g.n < 1) {
        PyErr_SetString(PyExc_ValueError, "gemm_rows: inconsistent sizes");
        goto done;
    }
    g.mp = (g.m + MR - 1) / MR * MR;
    g.lda = (size_t)g.k;
    g.ldx = g.ldy = (size_t)g.n;
    const Py_ssize_t out = (Py_ssize_t)g.m * g.n, panels = (Py_ssize_t)(g.n + NR - 1) / NR * g.k * NR;
    if (get_buffer(a_obj, &b[0], 0, "a") || floats_at_least(&b[0], (Py_ssize_t)g.m * g.k, "a") ||
        get_buffer(panels_obj, &b[1], 0, "panels") || floats_at_least(&b[1], panels, "panels") ||
        get_buffer(y_obj, &b[2], 1, "y") || floats_at_least(&b[2], out, "y") ||
        optional_floats(bias_obj, &b[3], g.n, "bias", &g.epilogue.column_bias) ||
        optional_floats(residual_obj, &b[4], out, "residual", &g.epilogue.residual) ||
        check_epilogue(&g.epilogue))
        goto done;
    g.a = b[0].view.buf;
    g.xp = b[1].view.buf;
    g.y = b[2].view.buf;
    RUN_WITHOUT_GIL(result, packed_gemm(&g, threads));
done:
    release(b, 5);
    return result;
}

static PyObject *py_gemm_batched(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *a_obj, *x_obj, *y_obj;
    PackedGemm g = {0};
    Py_ssize_t a_stride, x_stride;
    int threads;
    if (!PyArg_ParseTuple(args, "OnOniiiiOi", &a_obj, &a_stride, &x_obj, &x_stride, &g.batch, &g.m,
                          &g.k, &g.n, &y_obj, &threads))
        return NULL;
    Buffer b[3];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    const Py_ssize_t a_size = (Py_ssize_t)g.m * g.k, x_size = (Py_ssize_t)g.k * g.n;
    if (g.batch < 1 || g.m < 1 || g.k < 1 || g.n < 1 || !(a_stride == 0 || a_stride >= a_size) ||
        !(x_stride == 0 || x_stride >= x_size)) {
        PyErr_SetString(PyExc_ValueError, "gemm_batched: inconsistent sizes");
        goto done;
    }
    g.mp = (g.m + MR - 1) / MR * MR;
    g.lda = (size_t)g.k;
    g.ldx = g.ldy = (size_t)g.n;
    g.a_stride = (size_t)a_stride;
    g.x_stride = (size_t)x_stride;
    g.y_stride = (size_t)g.m * g.n;
    if (get_buffer(a_obj, &b[0], 0, "a") || floats_at_least(&b[0], a_stride * (g.batch - 1) + a_size, "a") ||
        get_buffer(x_obj, &b[1], 0, "b") || floats_at_least(&b[1], x_stride * (g.batch - 1) + x_size, "b") ||
        get_buffer(y_obj, &b[2], 1, "y") || floats_at_least(&b[2], (Py_ssize_t)g.batch * g.m * g.n, "y") ||
        check_epilogue(&g.epilogue))
        goto done;
    g.a = b[0].view.buf;
    g.x = b[1].view.buf;
    g.y = b[2].view.buf;
    RUN_WITHOUT_GIL(result, packed_gemm(&g, threads));
done:
    release(b, 3);
    return result;
}

/* Parse (x, C, H, W, kh, kw, sh, sw, dh, dw, pad_top, pad_left, OH, OW, row0, out, threads)
 * and run kernel on it; out holds OH * OW floats per plane of x, times kh * kw with per_tap. */
static PyObject *run_window(PyObject *args, const char *name, int (*kernel)(const Window2d *, int),
                            int per_tap)
{
    PyObject *x_obj, *out_obj;
    Window2d a;
    memset(&a, 0, sizeof(a));
    int threads;
    if (!PyArg_ParseTuple(args, "OiiiiiiiiiiiiiiOi", &x_obj, &a.c, &a.h, &a.w, &a.kh, &a.kw, &a.sh,
                          &a.sw, &a.dh, &a.dw, &a.pt, &a.pl, &a.oh, &a.ow, &a.row0, &out_obj,
                          &threads))
        return NULL;
    Buffer b[2];
    memset(b, 0, sizeof(b));
    PyObject *result = NULL;
    if (a.c < 1 || a.h < 1 || a.w < 1 || a.kh < 1 || a.kw < 1 || a.sh < 1 || a.sw < 1 || a.dh < 1 ||
        a.dw < 1 || a.pt < 0 || a.pl < 0 || a.oh < 1 || a.ow < 1 || a.row0 < 0 ||
        (a.row0 && per_tap == 0)) {
        PyErr_Format(PyExc_ValueError, "%s: inconsistent sizes", name);
        goto done;
    }
    const Py_ssize_t out = (Py_ssize_t)a.c * (per_tap ? a.kh * a.kw : 1) * a.oh * a.ow;
    if (!cpu_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "ferry's native kernels need an x86-64 CPU with AVX2 and FMA");
        goto done;
    }
    if (get_buffer(x_obj, &b[0], 0, "x") || floats_at_least(&b[0], (Py_ssize_t)a.c * a.h * a.w, "x") ||
        get_buffer(out_obj, &b[1], 1, "out") || floats_at_least(&b[1], out, "out"))
        goto done;
    a.x = b[0].view.buf;
    a.out = b[1].view.buf;
    RUN_WITHOUT_GIL(result, kernel(&a, threads));
done:
    release(b, 2);
    return result;
}

static PyObject *py_im2col(PyObject *self, PyObject *args)
{
    (void)self;
    return run_window(args, "im2col", im2col, 1);
}

static PyObject *py_max_pool_2d(PyObject *self, PyObject *args)
{
    (void)self;
    return run_window(args, "max_pool_2d", max_pool_2d, 0);
}

static PyObject *py_cpu_supported(PyObject *self, PyObject *args)
{
    (void)self, (void)args;
    return PyBool_FromLong(cpu_supported());
}

static PyMethodDef methods[] = {
    {"winograd_f43", py_winograd_f43, METH_VARARGS,
     "winograd_f43(x, C, H, W, u, M, Mp, bias, residual, y, OH, OW, pad_top, pad_left, act, "
     "alpha, beta, threads): Winograd F(4x4, 3x3) Conv of one float32 image into y."},
    {"packed_gemm", py_packed_gemm, METH_VARARGS,
     "packed_gemm(w, M, Mp, K, x, N, ldx, y, y_offset, ldy, bias, residual, act, alpha, beta, "
     "threads): y[y_offset:] rows = w (packed) @ x rows + bias, + residual, activation."},
    {"gemm_rows", py_gemm_rows, METH_VARARGS,
     "gemm_rows(a, R, K, panels, N, y, bias, residual, act, alpha, beta, threads): y (R, N) = "
     "a (R, K) @ W + bias[column], + residual, activation; W packed as panels (ceil(N/24), K, 24)."},
    {"gemm_batched", py_gemm_batched, METH_VARARGS,
     "gemm_batched(a, a_stride, b, b_stride, batch, M, K, N, y, threads): y[i] (M, N) = "
     "a[i] (M, K) @ b[i] (K, N) for i < batch, matrix i of a (of b) a_stride (b_stride) floats "
     "after matrix 0 (0: one matrix for all)."},
    {"im2col", py_im2col, METH_VARARGS,
     "im2col(x, C, H, W, kh, kw, sh, sw, dh, dw, pad_top, pad_left, OH, OW, row0, out, threads): "
     "the im2col matrix (C*kh*kw, OH*OW) of one float32 image's output rows row0.. into out."},
    {"max_pool_2d", py_max_pool_2d, METH_VARARGS,
     "max_pool_2d(x, planes, H, W, kh, kw, sh, sw, dh, dw, pad_top, pad_left, OH, OW, 0, out, "
     "threads): 2-D max pooling of float32 planes into out."},
    {"cpu_supported", py_cpu_supported, METH_NOARGS, "True when this CPU runs the kernels (AVX2 + FMA)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "ferry's compiled kernels.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddFunctions(m, ferry_row_methods) < 0)
        Py_CLEAR(m);
    return m;
}
