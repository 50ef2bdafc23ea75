"""Tensor calls the tracer answers itself instead of recording: sizes, metadata, and
reads of a tensor's data into Python (specializations)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import _pytree as pytree

from ferry.trace.symint import SymInt

__all__ = ["SPECIAL", "SymShape"]


class SymShape(tuple):
    """``x.shape`` when some dims are dynamic: a tuple of ints and SymInts."""

    def numel(self):
        total = 1
        for dim in self:
            total = total * dim
        return total


# a pytree node, so that x.view(y.shape) passes its SymInts on (as a plain tuple)
pytree.register_pytree_node(SymShape, lambda s: (list(s), None), lambda dims, _: tuple(dims))


def _shape(tracer, tensor: torch.Tensor):
    if not tracer.is_traced(tensor):
        return tensor.shape
    dims = tracer.var(tensor).shape
    if all(isinstance(d, int) for d in dims):
        return torch.Size(dims)
    return SymShape(dims)


def shape(tracer, func, args, kwargs):
    return _shape(tracer, args[0])


def size(tracer, func, args, kwargs):
    dims = _shape(tracer, args[0])
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    return dims if dim is None else dims[dim]


def numel(tracer, func, args, kwargs):
    dims = _shape(tracer, args[0])
    return dims.numel() if isinstance(dims, SymShape) else func(*args, **kwargs)


def length(tracer, func, args, kwargs):
    dims = _shape(tracer, args[0])
    if not dims:
        raise TypeError("len() of a 0-d tensor")
    first = dims[0]
    return first.__index__() if isinstance(first, SymInt) else first


def data_read(what: str) -> Callable:
    """A read of tensor data into Python: a specialization when the tensor is traced."""

    def handler(tracer, func, args, kwargs):
        tensor = args[0]
        if tracer.is_traced(tensor):
            tracer.specialize("tensor-value", f"a tensor's value was read as {what}")
        return func(*args, **kwargs)

    return handler


def passthrough(tracer, func, args, kwargs):
    return func(*args, **kwargs)


def type_call(tracer, func, args, kwargs):
    """``x.type()`` is metadata; ``x.type(dtype)`` on a traced tensor is a conversion."""
    if not tracer.is_traced(args[0]) or (len(args) < 2 and kwargs.get("dtype") is None):
        return func(*args, **kwargs)
    from ferry.trace.registry import lookup_symbolic

    return tracer.trace_call(func, lookup_symbolic(func, tracer.opset), args, kwargs)


def same_data(tracer, func, args, kwargs):
    """``.data`` / ``.detach()``: a new tensor object for the same traced value."""
    out = func(*args, **kwargs)
    tensor = args[0]
    if tracer.is_traced(tensor):
        record = tracer.records[id(tensor)]
        tracer.records[id(out)] = type(record)(out, record.value, record.probe)
    return out


Tensor = torch.Tensor
SPECIAL: dict[object, Callable] = {
    Tensor.shape: shape,
    Tensor.size: size,
    Tensor.numel: numel,
    Tensor.__len__: length,
    Tensor.__bool__: data_read("a Python bool (e.g. in an if)"),
    Tensor.item: data_read("a Python number (.item())"),
    Tensor.tolist: data_read("a Python list (.tolist())"),
    Tensor.__int__: data_read("a Python int"),
    Tensor.__float__: data_read("a Python float"),
    Tensor.__index__: data_read("a Python index"),
    Tensor.numpy: data_read("a numpy array"),
    Tensor.data: same_data,
    Tensor.detach: same_data,
}
for _name in (
    "dtype",
    "device",
    "is_cuda",
    "requires_grad",
    "layout",
    "is_leaf",
    "grad_fn",
    "grad",
    "is_sparse",
    "is_quantized",
    "is_meta",
    "ndim",
    "itemsize",
    "nbytes",
    "is_nested",
    "is_mkldnn",
):
    if hasattr(Tensor, _name):
        SPECIAL[getattr(Tensor, _name)] = passthrough
for _method in (
    Tensor.dim,
    Tensor.is_floating_point,
    Tensor.is_complex,
    Tensor.is_contiguous,
    Tensor.element_size,
    Tensor.get_device,
    Tensor.stride,
    Tensor.storage_offset,
    Tensor.__repr__,
    Tensor.__format__,
    Tensor.__hash__,
    Tensor.requires_grad_,
    Tensor.data_ptr,
    Tensor.untyped_storage,
    Tensor.type,
    Tensor.__reduce_ex__,
    Tensor.__deepcopy__,
    torch.is_floating_point,
    torch.is_complex,
    torch._nested_tensor_from_mask_left_aligned,  # selects nn.TransformerEncoder's fast path
):
    SPECIAL[_method] = passthrough
SPECIAL[Tensor.type] = type_call
