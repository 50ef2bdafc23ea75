/* Helpers shared by the Python bindings of ferry's compiled kernels (module.c, rows.c):
 * float32 buffers through the buffer protocol, checked by size; kernels run without the GIL. */
#ifndef FERRY_BINDINGS_H
#define FERRY_BINDINGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "native.h"

typedef struct {
    Py_buffer view;
    int held;
} Buffer;

static inline int get_buffer(PyObject *obj, Buffer *b, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s float32 buffer", what,
                     writable ? " writable" : "");
        return -1;
    }
    b->held = 1;
    const char *f = b->view.format;
    if (!f || b->view.itemsize != 4 || !(strcmp(f, "f") == 0 || strcmp(f, "<f") == 0 || strcmp(f, "=f") == 0)) {
        PyErr_Format(PyExc_TypeError, "%s: expected float32 items, got format %s", what, f ? f : "(bytes)");
        return -1;
    }
    return 0;
}

/* The optional buffer obj (None: NULL) of at least `floats` floats. */
static inline int optional_floats(PyObject *obj, Buffer *b, Py_ssize_t floats, const char *what,
                           const float **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (get_buffer(obj, b, 0, what) < 0)
        return -1;
    if (b->view.len < floats * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected at least %zd (float32)", what,
                     b->view.len, floats * (Py_ssize_t)sizeof(float));
        return -1;
    }
    *out = b->view.buf;
    return 0;
}

static inline int floats_at_least(Buffer *b, Py_ssize_t floats, const char *what)
{
    if (b->view.len < floats * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected at least %zd (float32)", what,
                     b->view.len, floats * (Py_ssize_t)sizeof(float));
        return -1;
    }
    return 0;
}

static inline void release(Buffer *buffers, int count)
{
    for (int i = 0; i < count; ++i)
        if (buffers[i].held)
            PyBuffer_Release(&buffers[i].view);
}

/* result = None after `call` (a kernel returning 0, or -1 when out of memory) ran with the
 * GIL released; MemoryError's NULL when it failed. */
#define RUN_WITHOUT_GIL(result, call)                                                              \
    do {                                                                                           \
        int status_;                                                                               \
        Py_BEGIN_ALLOW_THREADS status_ = (call);                                                   \
        Py_END_ALLOW_THREADS(result) = status_ ? PyErr_NoMemory() : Py_NewRef(Py_None);            \
    } while (0)

static inline int check_epilogue(const Epilogue *e)
{
    if (e->act < ACT_NONE || e->act > ACT_GELU) {
        PyErr_Format(PyExc_ValueError, "unknown activation code %d", e->act);
        return -1;
    }
    if (!cpu_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "ferry's native kernels need an x86-64 CPU with AVX2 and FMA");
        return -1;
    }
    return 0;
}

/* Methods defined outside module.c, added to the module when it is created. */
extern PyMethodDef ferry_row_methods[];

#endif
