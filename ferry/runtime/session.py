"""``InferenceSession``: onnxruntime's surface over ferry's kernels.

Creating a session loads and checks the model and compiles its plan once; ``run``
validates the feeds against the graph's declared inputs and executes the plan.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ferry.errors import InvalidArgument
from ferry.ir import DataType, MapType, Model, OptionalType, SequenceType, TensorType, Type, Value
from ferry.runtime.arena import enable_memory_arena
from ferry.runtime.kernels.native_conv import enabled as native_enabled
from ferry.runtime.kernels.native_conv import threads as native_threads
from ferry.runtime.options import GraphOptimizationLevel, SessionOptions
from ferry.runtime.plan import GraphPlan, compile_graph
from ferry.runtime.profiling import Profiler

__all__ = ["InferenceSession", "NodeArg"]

_PROVIDERS = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output as onnxruntime describes it."""

    name: str
    shape: list[int | str | None] | None
    type: str

    @classmethod
    def of(cls, value: Value) -> NodeArg:
        shape = value.shape
        return cls(value.name, list(shape) if shape is not None else None, _type_name(value.type))


def _type_name(type_: Type | None) -> str:
    if isinstance(type_, TensorType):
        return f"tensor({type_.dtype.short_name if type_.dtype is not None else 'undefined'})"
    if isinstance(type_, SequenceType):
        return f"seq({_type_name(type_.elem_type)})"
    if isinstance(type_, OptionalType):
        return f"optional({_type_name(type_.elem_type)})"
    if isinstance(type_, MapType):
        key = type_.key_type.short_name if type_.key_type is not None else "undefined"
        return f"map({key},{_type_name(type_.value_type)})"
    return "unknown"


class InferenceSession:
    """Run an ONNX model: ``InferenceSession(path | bytes | Model).run(None, feeds)``."""

    def __init__(
        self,
        model: str | os.PathLike | bytes | Model,
        sess_options: SessionOptions | None = None,
        *,
        providers: Sequence[str] | None = None,
        check: bool = True,
        enable_profiling: bool | None = None,
    ) -> None:
        from ferry.format import load

        for provider in providers or ():
            name = provider[0] if isinstance(provider, tuple) else provider
            if name not in _PROVIDERS:
                raise InvalidArgument(f"unknown execution provider {name!r}; ferry offers {_PROVIDERS}")
        self._options = sess_options or SessionOptions()
        if enable_profiling is not None:
            self._options.enable_profiling = enable_profiling
        owned = not isinstance(model, Model)
        self._model = load(model) if owned else model
        if check:
            from ferry.checker import check_model

            check_model(self._model)
        level = self._options.graph_optimization_level
        if level > GraphOptimizationLevel.ORT_DISABLE_ALL:
            self._model = _optimized(self._model, owned, fuse=level >= GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        self._profiler = Profiler(self._options.profile_file_prefix) if self._options.enable_profiling else None
        self._runs = 0
        self._threads = _blas_threads(self._options.intra_op_num_threads)
        if self._options.enable_cpu_mem_arena:
            enable_memory_arena()
        graph = self._model.graph
        self._inputs = [v for v in graph.inputs if v.name not in graph.initializers]
        self._overridable = [v for v in graph.inputs if v.name in graph.initializers]
        with self._native():  # constant weights are packed for the kernels that will run
            self._plan: GraphPlan = compile_graph(self._model)

    @property
    def model(self) -> Model:
        return self._model

    def get_inputs(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._model.graph.outputs]

    def get_overridable_initializers(self) -> list[NodeArg]:
        return [NodeArg.of(v) for v in self._overridable]

    def get_providers(self) -> list[str]:
        return list(_PROVIDERS)

    def get_session_options(self) -> SessionOptions:
        return self._options

    def end_profiling(self) -> str:
        """Write the per-node timings as a Chrome trace; returns the file's path."""
        if self._profiler is None:
            raise InvalidArgument("profiling is off: create the session with enable_profiling=True")
        return self._profiler.write()

    @property
    def profiler(self) -> Profiler | None:
        return self._profiler

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, object], run_options: object = None) -> list:
        """Compute ``output_names`` (None: all outputs) from the feeds."""
        env = dict(self._plan.constants)
        env.update(self._validate(input_feed))
        self._runs += 1
        with self._threads, self._native():
            outputs = self._plan.run(env, self._profiler, self._runs)
        if output_names is None:
            return outputs
        by_name = dict(zip(self._plan.outputs, outputs))
        unknown = [n for n in output_names if n not in by_name]
        if unknown:
            raise InvalidArgument(f"unknown output name(s) {unknown}; the model's outputs are {list(by_name)}")
        return [by_name[n] for n in output_names]

    @contextlib.contextmanager
    def _native(self):
        """Native kernels on or off, as the options say, while the block runs."""
        token = native_enabled.set(self._options.use_native_kernels and native_enabled.get())
        try:
            yield
        finally:
            native_enabled.reset(token)

    def _validate(self, feeds: Mapping[str, object]) -> dict[str, object]:
        declared = {v.name: v for v in [*self._inputs, *self._overridable]}
        unknown = [name for name in feeds if name not in declared]
        if unknown:
            raise InvalidArgument(
                f"unknown input name(s) {unknown}; the model's inputs are {[v.name for v in self._inputs]}"
            )
        missing = [v.name for v in self._inputs if v.name not in feeds]
        if missing:
            raise InvalidArgument(f"missing input(s) {missing}: every model input needs a value")
        return {name: _check_value(declared[name], value) for name, value in feeds.items()}


def _optimized(model: Model, owned: bool, *, fuse: bool) -> Model:
    """The model after ferry's passes (and, with ``fuse``, the session's fusions); a caller's
    Model object is copied first, not changed."""
    from ferry.format import model_from_bytes, model_to_bytes
    from ferry.passes import optimize
    from ferry.runtime.fusions import fuse as apply_fusions

    if not owned:
        if any(getattr(v.const_value, "location", None) for v in model.graph.initializers.values()):
            return model  # external weights: copying would read them all; run as given
        model = model_from_bytes(model_to_bytes(model))
    optimize(model)
    return apply_fusions(model) if fuse else model


class _blas_threads:  # noqa: N801 - used as a context manager, like contextlib's
    """Limit BLAS and ferry's native kernels to ``threads`` threads while a run lasts (0:
    leave BLAS alone; native kernels use every CPU the process may run on)."""

    def __init__(self, threads: int) -> None:
        self._controller = None
        self._threads = threads
        if threads:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                raise InvalidArgument(
                    "SessionOptions.intra_op_num_threads needs the threadpoolctl package (pip install threadpoolctl)"
                ) from None
            self._controller = ThreadpoolController()  # found once: a lookup per run costs ~0.1 ms
        self._limit = None

    def __enter__(self) -> None:
        if self._controller is not None:
            self._limit = self._controller.limit(limits=self._threads, user_api="blas")
            self._token = native_threads.set(self._threads)

    def __exit__(self, *exc) -> None:
        if self._limit is not None:
            self._limit.restore_original_limits()
            self._limit = None
            native_threads.reset(self._token)


def _check_value(value: Value, data: object) -> object:
    """Check one feed against its declared type; return it as the kernels expect it."""
    declared = value.type
    if not isinstance(declared, TensorType):
        return data
    if not isinstance(data, np.ndarray):
        if isinstance(data, (np.generic, int, float, bool)):
            data = np.asarray(data)
        else:
            raise InvalidArgument(f"input {value.name!r}: expected a numpy array, got {type(data).__name__}")
    if declared.dtype is not None and declared.dtype != DataType.UNDEFINED:
        expected = declared.dtype.numpy
        if data.dtype != expected and not (declared.dtype == DataType.STRING and data.dtype.kind in "OUS"):
            raise InvalidArgument(
                f"input {value.name!r}: expected {_type_name(declared)} ({expected}), got an array of {data.dtype}"
            )
        if declared.dtype == DataType.STRING and data.dtype.kind in "US":
            data = data.astype(object)
    shape = declared.shape
    if shape is not None:
        if data.ndim != len(shape):
            raise InvalidArgument(
                f"input {value.name!r}: expected rank {len(shape)} {shape}, got rank {data.ndim} {list(data.shape)}"
            )
        for axis, (want, got) in enumerate(zip(shape, data.shape)):
            if isinstance(want, int) and want != got:
                raise InvalidArgument(
                    f"input {value.name!r}: dimension {axis} must be {want} (shape {shape}), got {got} "
                    f"(shape {list(data.shape)})"
                )
    return data
