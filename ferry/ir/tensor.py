"""Tensors: constant data held by initializers and attributes.

A :class:`Tensor` knows its element type, shape and name and yields its data as a
numpy array through :meth:`Tensor.numpy`. Subclasses decide where the data lives:
:class:`ArrayTensor` wraps an array; :class:`LazyTensor` calls a loader on first use
(the format layer uses it for protobuf-backed and external data). Arrays follow
:mod:`ferry.ir.dtypes` for types numpy lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ferry.ir.dtypes import DataType, from_numpy_dtype

__all__ = ["ArrayTensor", "LazyTensor", "SparseTensor", "Tensor"]


class Tensor:
    """Base class: element type, shape, name, doc string and metadata of constant data."""

    def __init__(
        self,
        dtype: DataType,
        shape: Sequence[int],
        *,
        name: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        self.dtype = DataType(dtype)
        self.shape = tuple(int(d) for d in shape)
        self.name = name
        self.doc_string = doc_string
        self.metadata_props = dict(metadata_props or {})

    def numpy(self) -> np.ndarray:
        """The data as a numpy array of ``self.shape`` (read-only where it is a view)."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        """Bytes of the packed little-endian encoding (strings: total UTF-8 length)."""
        if self.dtype == DataType.STRING:
            return sum(len(s.encode() if isinstance(s, str) else s) for s in self.numpy().flat)
        return (self.size * self.dtype.bitwidth + 7) // 8

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<{type(self).__name__}{name} {self.dtype.short_name}{list(self.shape)}>"

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)


class ArrayTensor(Tensor):
    """A tensor backed by a numpy array (the array is not copied)."""

    def __init__(
        self,
        array: np.ndarray | Sequence,
        dtype: DataType | None = None,
        *,
        name: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        array = np.asarray(array)
        if array.dtype.kind in "US":
            array = array.astype(object)
        inferred = from_numpy_dtype(array.dtype)
        if dtype is not None and DataType(dtype) != inferred:
            raise TypeError(
                f"tensor {name!r}: array of numpy dtype {array.dtype} cannot hold "
                f"{DataType(dtype).name}; expected {DataType(dtype).numpy}"
            )
        super().__init__(
            inferred, array.shape, name=name, doc_string=doc_string, metadata_props=metadata_props
        )
        self._array = array

    def numpy(self) -> np.ndarray:
        return self._array


class LazyTensor(Tensor):
    """A tensor whose data is produced by ``loader`` on first access, then cached."""

    def __init__(
        self,
        loader: Callable[[], np.ndarray],
        dtype: DataType,
        shape: Sequence[int],
        *,
        name: str | None = None,
        doc_string: str | None = None,
        metadata_props: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            dtype, shape, name=name, doc_string=doc_string, metadata_props=metadata_props
        )
        self._loader = loader
        self._array: np.ndarray | None = None

    @property
    def is_loaded(self) -> bool:
        return self._array is not None

    def numpy(self) -> np.ndarray:
        if self._array is None:
            self._array = self._loader()
        return self._array


class SparseTensor:
    """A COO sparse tensor: ``values`` at ``indices`` within a dense shape ``dims``.

    ``indices`` is either [NNZ, rank] coordinates or [NNZ] linearized positions.
    """

    def __init__(self, values: Tensor, indices: Tensor | None, dims: Sequence[int]) -> None:
        self.values = values
        self.indices = indices
        self.dims = tuple(int(d) for d in dims)

    @property
    def name(self) -> str | None:
        return self.values.name

    @property
    def dtype(self) -> DataType:
        return self.values.dtype

    def to_dense(self) -> np.ndarray:
        """The dense array this sparse tensor stands for."""
        values = self.values.numpy().reshape(-1)
        dense = np.zeros(self.dims, dtype=values.dtype)
        if self.indices is None or values.size == 0:
            return dense
        indices = self.indices.numpy().astype(np.int64)
        flat = dense.reshape(-1)
        if indices.ndim == 1:
            flat[indices] = values
        else:
            flat[np.ravel_multi_index(tuple(indices.T), self.dims)] = values
        return dense

    def __repr__(self) -> str:
        return f"<SparseTensor {self.name!r} {self.dtype.short_name}{list(self.dims)}>"
