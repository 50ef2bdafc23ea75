"""Build of ferry's optional compiled kernels; everything else is in pyproject.toml.

The extension is optional: where no C compiler is present, or on a platform the kernels do
not target, installation goes on without it and ferry runs its numpy algorithms.
"""

from setuptools import Extension, setup

NATIVE = "ferry/runtime/kernels/native"

setup(
    ext_modules=[
        Extension(
            "ferry.runtime.kernels._native",
            sources=[f"{NATIVE}/{name}.c" for name in ("module", "pool", "winograd", "gemm", "im2col", "pool2d", "rows")],
            depends=[f"{NATIVE}/native.h", f"{NATIVE}/bindings.h"],
            extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE", "-fno-strict-aliasing"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ]
)
