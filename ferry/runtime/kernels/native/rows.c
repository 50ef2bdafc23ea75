/* Row-wise kernels: their Python bindings are added to the module by module.c. */
#include "bindings.h"

PyMethodDef ferry_row_methods[] = {
    {NULL, NULL, 0, NULL},
};
