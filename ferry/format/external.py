"""External tensor data: reading it safely and lazily, writing it beside a model.

A TensorProto with ``data_location = EXTERNAL`` names a file (``location``, relative
to the model's folder) and optionally ``offset`` and ``length``. ferry refuses a
location that leaves the model's folder (absolute path, ``..``, or a symlink leading
out) and a byte range past the file's end, naming the tensor. Data is memory-mapped
when first used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ferry.errors import FormatError
from ferry.ir.dtypes import DataType
from ferry.ir.tensor import LazyTensor

__all__ = ["ExternalTensor", "resolve_location"]


def resolve_location(base_dir: str | os.PathLike | None, location: str, tensor_name: str) -> str:
    """The absolute path of ``location`` inside ``base_dir``, or FormatError if unsafe."""
    if base_dir is None:
        raise FormatError(
            f"tensor {tensor_name!r} keeps its data in external file {location!r}, but the model "
            "was loaded from bytes; pass base_dir= to ferry.load to say where that file is"
        )
    if not location:
        raise FormatError(f"tensor {tensor_name!r}: external data has an empty location")
    if (
        os.path.isabs(location)
        or location.startswith(("/", "\\"))
        or (len(location) > 1 and location[1] == ":")
    ):
        raise FormatError(
            f"tensor {tensor_name!r}: external data location {location!r} is an absolute path; "
            "expected a path relative to the model's folder"
        )
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise FormatError(
            f"tensor {tensor_name!r}: external data location {location!r} contains '..'; "
            "expected a path inside the model's folder"
        )
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise FormatError(
            f"tensor {tensor_name!r}: external data location {location!r} resolves to {path!r}, "
            f"outside the model's folder {root!r} (through a symbolic link)"
        )
    return path


class ExternalTensor(LazyTensor):
    """A tensor whose bytes live in a file beside the model; mapped on first access."""

    def __init__(
        self,
        path: str,
        location: str,
        offset: int,
        length: int | None,
        dtype: DataType,
        shape: tuple[int, ...],
        *,
        entries: Mapping[str, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(self._load, dtype, shape, **kwargs)
        self.path = path
        self.location = location
        self.offset = offset
        self.length = self.nbytes if length is None else length
        self.entries = dict(entries or {})
        self._check_bounds()

    def _check_bounds(self) -> None:
        name = self.name
        if not os.path.isfile(self.path):
            raise FormatError(f"tensor {name!r}: external data file {self.path!r} does not exist")
        if self.dtype == DataType.STRING:
            raise FormatError(f"tensor {name!r}: string tensors cannot use external data")
        if self.length != self.nbytes:
            raise FormatError(
                f"tensor {name!r}: external data length is {self.length} bytes, but "
                f"{self.dtype.name}{list(self.shape)} needs {self.nbytes}"
            )
        file_size = os.path.getsize(self.path)
        if self.offset < 0 or self.offset + self.length > file_size:
            raise FormatError(
                f"tensor {name!r}: external data range [{self.offset}, {self.offset + self.length}) "
                f"lies beyond the end of {self.location!r} ({file_size} bytes)"
            )

    def _load(self) -> np.ndarray:
        from ferry.format.tensors import _from_raw

        if self.length == 0:
            raw = b""
        else:
            raw = np.memmap(
                self.path, dtype=np.uint8, mode="r", offset=self.offset, shape=(self.length,)
            )
        return _from_raw(raw, self.dtype, self.shape)
