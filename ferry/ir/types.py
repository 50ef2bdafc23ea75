"""Value types: tensors, sparse tensors, sequences, maps, optionals, and their shapes.

Each class mirrors one arm of ONNX's ``TypeProto``. ``None`` in a field means the field
is absent from the model (an unknown element type, an unknown rank), which is
different from a known empty value (a scalar has the empty shape ``Shape([])``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ferry.ir.dtypes import DataType

__all__ = [
    "UnsetType",
    "Dim",
    "MapType",
    "OpaqueType",
    "OptionalType",
    "SequenceType",
    "Shape",
    "SparseTensorType",
    "TensorType",
    "Type",
]

Dim = int | str | None
"""One dimension: a size, a symbolic name, or None when unknown."""


class Shape(Sequence):
    """An immutable tensor shape whose dims are ints, symbolic names or None.

    ``denotations`` optionally gives each dim's ONNX denotation (e.g. ``DATA_BATCH``).
    """

    __slots__ = ("_dims", "_denotations")

    def __init__(self, dims: Iterable[Dim], denotations: Iterable[str | None] | None = None):
        self._dims: tuple[Dim, ...] = tuple(dims)
        for dim in self._dims:
            if not (dim is None or isinstance(dim, (int, str))) or isinstance(dim, bool):
                raise TypeError(f"a dimension must be an int, a str or None, not {dim!r}")
        self._denotations = tuple(denotations) if denotations is not None else None
        if self._denotations is not None and len(self._denotations) != len(self._dims):
            raise ValueError(
                f"shape has {len(self._dims)} dims but {len(self._denotations)} denotations"
            )

    @property
    def dims(self) -> tuple[Dim, ...]:
        return self._dims

    @property
    def denotations(self) -> tuple[str | None, ...] | None:
        return self._denotations

    @property
    def rank(self) -> int:
        return len(self._dims)

    def is_static(self) -> bool:
        """True when every dim is a known integer."""
        return all(isinstance(d, int) for d in self._dims)

    def numel(self) -> int | None:
        """The element count, or None if any dim is not a known integer."""
        if not self.is_static():
            return None
        count = 1
        for dim in self._dims:
            count *= dim  # type: ignore[operator]
        return count

    def __getitem__(self, index):
        return self._dims[index]

    def __len__(self) -> int:
        return len(self._dims)

    def __iter__(self) -> Iterator[Dim]:
        return iter(self._dims)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Shape):
            return self._dims == other._dims and self._denotations == other._denotations
        if isinstance(other, (tuple, list)):
            return self._dims == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._dims)

    def __repr__(self) -> str:
        return f"Shape({list(self._dims)!r})"

    def __str__(self) -> str:
        return "[" + ",".join("?" if d is None else str(d) for d in self._dims) + "]"


@dataclass
class TensorType:
    """A dense tensor of ``dtype`` with an optional ``shape`` (None: rank unknown)."""

    dtype: DataType | None = None
    shape: Shape | None = None
    denotation: str | None = None

    def __post_init__(self) -> None:
        if self.dtype is not None:
            self.dtype = DataType(self.dtype)
        if self.shape is not None and not isinstance(self.shape, Shape):
            self.shape = Shape(self.shape)

    def __str__(self) -> str:
        dtype = self.dtype.short_name if self.dtype is not None else "?"
        return f"{dtype}{self.shape}" if self.shape is not None else dtype


@dataclass
class SparseTensorType(TensorType):
    """A sparse tensor (COO) of ``dtype`` and ``shape``."""

    def __str__(self) -> str:
        return f"sparse({super().__str__()})"


@dataclass
class SequenceType:
    """A sequence whose elements all have ``elem_type``."""

    elem_type: Type | None = None
    denotation: str | None = None

    def __str__(self) -> str:
        return f"seq({self.elem_type})"


@dataclass
class OptionalType:
    """A value that is either absent or of ``elem_type``."""

    elem_type: Type | None = None
    denotation: str | None = None

    def __str__(self) -> str:
        return f"optional({self.elem_type})"


@dataclass
class MapType:
    """A map from ``key_type`` (an integer or string element type) to ``value_type``."""

    key_type: DataType | None = None
    value_type: Type | None = None
    denotation: str | None = None

    def __str__(self) -> str:
        key = self.key_type.short_name if self.key_type is not None else "?"
        return f"map({key},{self.value_type})"


@dataclass
class OpaqueType:
    """An opaque type identified by ``domain`` and ``name``."""

    domain: str | None = None
    name: str | None = None
    denotation: str | None = None

    def __str__(self) -> str:
        return f"opaque({self.domain}.{self.name})"


@dataclass
class UnsetType:
    """A TypeProto with no arm set (only a denotation, or nothing at all)."""

    denotation: str | None = None

    def __str__(self) -> str:
        return "?"


Type = (
    TensorType | SparseTensorType | SequenceType | OptionalType | MapType | OpaqueType | UnsetType
)
