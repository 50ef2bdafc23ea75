"""The recording mechanism: a torch function mode that runs the program and records it.

Every torch call the program makes reaches :meth:`Tracer.__torch_function__`. A call
that touches a traced tensor (or a dynamic size) is executed for real, executed again
on the *probe* (the same program with each dynamic axis at another size), and handed to
its symbolic function, which adds ONNX nodes; the real result is then bound to the new
graph value. Comparing real and probe shapes tells which dimensions are dynamic. Reads
of a tensor's data or of a dynamic size as a Python value are specializations: reported
with the user's source line, or an error with ``strict=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from ferry.errors import ExportError, TracerWarning, UnsupportedOperatorError
from ferry.ir import Shape, TensorType, Value
from ferry.trace.builder import GraphBuilder
from ferry.trace.dtypes import to_data_type
from ferry.trace.registry import key_of, lookup_symbolic
from ferry.trace.symint import SymInt, concrete

__all__ = ["Specialization", "Tracer", "Var"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_FERRY_TRACE_DIR = os.path.dirname(__file__)


@dataclasses.dataclass(frozen=True)
class Specialization:
    """A point where the trace fixed a value: what happened and where in the user's code."""

    kind: str  # "tensor-value" | "dynamic-size"
    message: str
    filename: str
    lineno: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}: {self.message}"


@dataclasses.dataclass
class Var:
    """A traced tensor as a symbolic function sees it."""

    value: Value
    tensor: torch.Tensor
    shape: tuple[int | SymInt, ...]

    @property
    def var(self) -> Value:
        return self.value

    @property
    def dtype(self) -> torch.dtype:
        return self.tensor.dtype

    @property
    def rank(self) -> int:
        return self.tensor.dim()

    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


@dataclasses.dataclass
class _Record:
    tensor: torch.Tensor  # kept alive so its id stays unique
    value: Value
    probe: torch.Tensor | None


def user_frame() -> tuple[str, int]:
    """The innermost frame outside torch and ferry.trace: the user's file and line."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        internal = filename.startswith((_TORCH_DIR, _FERRY_TRACE_DIR, "<frozen"))
        if not internal and "contextlib" not in filename:
            return filename, frame.f_lineno
        frame = frame.f_back
    return "<unknown>", 0


class Context:
    """What a symbolic function gets as ``g``: node building plus facts of the call."""

    def __init__(self, tracer: Tracer, out: Any) -> None:
        self.tracer = tracer
        self.builder = tracer.builder
        self.out = out  # the real result of the torch call
        self.opset = tracer.opset

    def op(self, op_type: str, *inputs: object, **kwargs: object):
        return self.builder.op(op_type, *inputs, **kwargs)

    def const(self, value: object, dtype=None) -> Value:
        return self.builder.const(value, dtype)

    def int64(self, values) -> Value:
        return self.builder.int64(values)

    def shape_value(self, dims) -> Value:
        """An int64 1-D value from a list of ints and SymInts (sizes of a shape)."""
        return self.tracer.shape_value(dims)

    def int_value(self, value: int | SymInt) -> Value:
        """An int64 scalar value for an int or SymInt."""
        return self.tracer.int_var(value)

    def subgraph(self, name: str):
        return self.tracer.subgraph(name)


class Tracer(TorchFunctionMode):
    """Records torch calls into ``builder``'s graph (see module doc)."""

    def __init__(self, builder: GraphBuilder, *, params: dict[int, str], strict: bool) -> None:
        super().__init__()
        self.builder = builder
        self.root = builder
        self.opset = builder.opset
        self.params = params
        self.strict = strict
        self.records: dict[int, _Record] = {}
        self.constants: dict[int, tuple[torch.Tensor, Value]] = {}
        self.stale: dict[int, str] = {}
        self.stale_through: dict[int, set[int]] = {}  # the views whose in-place change staled it
        self.specializations: list[Specialization] = []
        self.scopes: list[str] = []
        self.axis_names: dict[tuple[int, int], str] = {}
        self.probing = True
        self._dims: dict[tuple[int, int], SymInt] = {}
        self.current_source: str | None = None
        self.active = True
        self.capture: dict[int, torch.Tensor] | None = None  # id(value) -> real data (verify)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Run torch calls untraced (the tracer's own bookkeeping on real tensors)."""
        active, self.active = self.active, False
        try:
            yield
        finally:
            self.active = active

    # -- context for node names and sources --------------------------------------------------
    def node_context(self) -> tuple[str, str | None]:
        return ("/" + "/".join(self.scopes) if self.scopes else ""), self.current_source

    def specialize(self, kind: str, message: str) -> None:
        filename, lineno = user_frame()
        where = Specialization(kind, message, filename, lineno)
        self.specializations.append(where)
        if self.strict:
            raise ExportError(f"strict export: {where}")
        warnings.warn_explicit(
            f"ferry: {message}; the exported graph keeps only this case",
            TracerWarning,
            filename,
            lineno,
        )

    # -- tensors <-> graph values ------------------------------------------------------------
    def bind(self, tensor: torch.Tensor, value: Value, probe: torch.Tensor | None) -> None:
        self.records[id(tensor)] = _Record(tensor, value, probe)
        self.stale.pop(id(tensor), None)
        self.stale_through.pop(id(tensor), None)
        if self.capture is not None:
            self.capture[id(value)] = tensor.detach().clone()
        dims = []
        for axis, size in enumerate(tensor.shape):
            if probe is None or probe.dim() != tensor.dim() or probe.shape[axis] == size:
                dims.append(int(size))
            else:
                dims.append(self.axis_names.get((int(size), int(probe.shape[axis]))))
        value.type = TensorType(to_data_type(tensor.dtype), Shape(dims))

    def is_traced(self, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor) and id(obj) in self.records

    def value_of_tensor(self, tensor: torch.Tensor) -> Value:
        """The graph value of ``tensor``: traced, a parameter (initializer) or a constant."""
        if id(tensor) in self.stale:
            raise UnsupportedOperatorError(
                f"{self._where()}: this tensor was changed in place through a view "
                f"({self.stale[id(tensor)]}); reading it after that is not supported by the tracer"
            )
        record = self.records.get(id(tensor))
        if record is not None:
            return record.value
        known = self.constants.get(id(tensor))
        if known is not None:
            return known[1]
        name = self.params.get(id(tensor), "_const")
        array = tensor.detach().cpu().contiguous().numpy()
        if not isinstance(tensor, torch.nn.Parameter):  # its data may still change in place
            array = array.copy()
        if array.ndim == 0 and name == "_const":
            value = self.builder.const(array)
        else:
            value = self.root.add_initializer(name, array)
        self.constants[id(tensor)] = (tensor, value)
        return value

    def var(self, tensor: torch.Tensor) -> Var:
        value = self.value_of_tensor(tensor)
        record = self.records.get(id(tensor))
        probe = record.probe if record is not None else tensor
        shape = tuple(self._dim(tensor, value, probe, axis) for axis in range(tensor.dim()))
        return Var(value, tensor, shape)

    def _dim(self, tensor, value, probe, axis) -> int | SymInt:
        size = int(tensor.shape[axis])
        if probe is None or probe.dim() != tensor.dim() or int(probe.shape[axis]) == size:
            return size
        key = (id(value), axis)
        if key not in self._dims:
            builder = self.builder

            def make(value=value, axis=axis, builder=builder) -> Value:
                shape = builder.op("Shape", value, start=axis, end=axis + 1)
                return builder.op("Squeeze", shape, builder.int64([0]))

            self._dims[key] = SymInt(self, size, int(probe.shape[axis]), make)
        return self._dims[key]

    def int_var(self, value: int | SymInt) -> Value:
        if isinstance(value, SymInt):
            return value.var
        return self.builder.int64(int(value))

    def shape_value(self, dims) -> Value:
        dims = list(dims)
        if all(not isinstance(d, SymInt) for d in dims):
            return self.builder.int64([int(d) for d in dims])
        parts = [
            self.builder.op("Unsqueeze", d.var, self.builder.int64([0]))
            if isinstance(d, SymInt)
            else self.builder.int64([int(d)])
            for d in dims
        ]
        return self.builder.op("Concat", *parts, axis=0)

    def subgraph(self, name: str) -> GraphBuilder:
        return self.builder.subgraph(name)

    def _where(self) -> str:
        filename, lineno = user_frame()
        return f"{filename}:{lineno}"

    # -- the mode ------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.active:
            return func(*args, **kwargs)
        from ferry.trace.special import SPECIAL

        handler = SPECIAL.get(key_of(func))
        if handler is not None:
            return handler(self, func, args, kwargs)
        touched = self._touches(args, kwargs)
        fn = lookup_symbolic(func, self.opset)
        if fn is None:
            if not touched:
                return func(*args, **kwargs)
            raise UnsupportedOperatorError(
                f"{self._where()}: the tracer has no symbolic function for {_name(func)}; "
                "add one with ferry.register_symbolic (see docs/tracer.md)"
            )
        if not touched:
            return func(*args, **kwargs)
        return self.trace_call(func, fn, args, kwargs)

    def _touches(self, args, kwargs) -> bool:
        for leaf in _leaves((args, kwargs)):
            if isinstance(leaf, SymInt) or (
                isinstance(leaf, torch.Tensor) and id(leaf) in self.records
            ):
                return True
        return False

    def trace_call(self, func, fn: Callable, args, kwargs):
        filename, lineno = user_frame()
        self.current_source = f"{os.path.basename(filename)}:{lineno}"
        real_args, real_kwargs = _map(concrete, (args, kwargs))
        inplace = _is_inplace(func)
        if inplace and isinstance(args[0], torch.Tensor) and id(args[0]) not in self.records:
            self._adopt_constant(args[0])
        if func is torch.Tensor.__setitem__:
            self._accept_write_back(real_args)
        out = func(*real_args, **real_kwargs)
        probe_out = self._probe(func, args, kwargs)
        sym_args, sym_kwargs = _map(
            lambda x: self.var(x) if isinstance(x, torch.Tensor) else x, (args, kwargs)
        )
        result = fn(Context(self, out), *sym_args, **sym_kwargs)
        if inplace:
            target = args[0]
            probe_target = self.records[id(target)].probe if id(target) in self.records else None
            self._mark_views_stale(target, func)
            self.bind(target, _single(result, func), probe_target)
            return out
        self._bind_result(func, out, result, probe_out)
        return out

    def _adopt_constant(self, tensor: torch.Tensor) -> None:
        """An untraced tensor about to change in place (``buf[0] = x``) becomes traced: the
        constant of its data before the change, with a copy of its own for the probe run."""
        value = self.value_of_tensor(tensor)
        self.records[id(tensor)] = _Record(tensor, value, tensor.clone() if self.probing else None)

    def _accept_write_back(self, args) -> None:
        """``x[idx] += v`` changes the view ``x[idx]`` in place, then writes it back into ``x``:
        when that view is the only change, the write rebuilds ``x``, so ``x`` may be read."""
        target, index, value = args[:3]
        if id(target) not in self.stale or self.stale_through.get(id(target)) != {id(value)}:
            return
        view = target[index]
        if (view.data_ptr(), view.shape, view.stride()) == (value.data_ptr(), value.shape, value.stride()):
            del self.stale[id(target)]

    def _probe(self, func, args, kwargs):
        if not self.probing:
            return None

        def to_probe(x):
            if isinstance(x, SymInt):
                return x.probe
            if isinstance(x, torch.Tensor):
                record = self.records.get(id(x))
                if record is None:
                    return x
                if record.probe is None:
                    raise _NoProbe
                return record.probe
            return x

        try:
            probe_args, probe_kwargs = _map(to_probe, (args, kwargs))
            return func(*probe_args, **probe_kwargs)
        except _NoProbe:
            return None
        except Exception as error:  # the program does not run at the probe sizes
            self.probing = False
            warnings.warn(
                f"ferry: the probe run (dynamic axes at other sizes) failed at {self._where()} "
                f"({type(error).__name__}: {error}); sizes from here on are treated as fixed "
                "and the export's check will test them",
                TracerWarning,
                stacklevel=2,
            )
            return None

    def _bind_result(self, func, out, result, probe_out) -> None:
        tensors = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        values = [v for v in pytree.tree_leaves(result) if isinstance(v, Value)]
        if len(tensors) != len(values):
            raise ExportError(
                f"{self._where()}: the symbolic of {_name(func)} returned {len(values)} values "
                f"for {len(tensors)} tensors"
            )
        probes = [t for t in pytree.tree_leaves(probe_out) if isinstance(t, torch.Tensor)]
        if len(probes) != len(tensors):
            probes = [None] * len(tensors)
        for tensor, value, probe in zip(tensors, values, probes):
            if id(tensor) in self.records or id(tensor) in self.constants:
                value = self.builder.op("Identity", value)  # the op returned an input as is
            self.bind(tensor, value, probe)

    def _mark_views_stale(self, target: torch.Tensor, func) -> None:
        root = target._base if target._base is not None else target
        for key, record in self.records.items():
            other = record.tensor
            if other is target:
                continue
            if (other._base if other._base is not None else other) is root:
                self.stale[key] = f"{_name(func)} at {self._where()}"
                self.stale_through.setdefault(key, set()).add(id(target))


class _NoProbe(Exception):
    pass


def _map(fn, tree):
    """pytree.tree_map that also maps slice bounds (``x[:, : n]`` with a dynamic ``n``)."""

    def leaf(x):
        if isinstance(x, slice):
            return slice(fn(x.start), fn(x.stop), fn(x.step))
        return fn(x)

    return pytree.tree_map(leaf, tree)


def _leaves(tree) -> list:
    """pytree.tree_leaves, with slices opened into their bounds."""
    leaves = []
    for leaf in pytree.tree_leaves(tree):
        leaves.extend((leaf.start, leaf.stop, leaf.step) if isinstance(leaf, slice) else (leaf,))
    return leaves


def _single(result, func) -> Value:
    if isinstance(result, Value):
        return result
    raise ExportError(f"the symbolic of in-place {_name(func)} must return one value")


def _is_inplace(func) -> bool:
    name = getattr(func, "__name__", "")
    return name == "__setitem__" or (name.endswith("_") and not name.startswith("_"))


def _name(func) -> str:
    owner = getattr(func, "__self__", None)
    if type(owner).__name__ == "getset_descriptor":
        return f"Tensor.{owner.__name__}"
    module = getattr(func, "__module__", None) or ""
    qualname = getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))
    qualname = qualname.replace("TensorBase.", "Tensor.").replace(
        "_VariableFunctionsClass.", "torch."
    )
    if module.startswith("torch._C._nn"):
        return f"torch.nn.functional.{qualname}"
    if module and not qualname.startswith(("Tensor.", "torch.")):
        return f"{module}.{qualname}"
    return qualname


def numpy_of(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()
