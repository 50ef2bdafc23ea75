"""Shape manipulation, indexing and tensor creation: each op's common forms, static and
with dynamic axes (sizes read from the inputs), checked at the traced and two other sizes."""

from __future__ import annotations

import pytest
import torch

import ferry
from tests.trace.helpers import check_export

torch.manual_seed(0)
SIZES = ({"B": 2, "T": 6}, {"B": 3, "T": 4}, {"B": 5, "T": 9})


def randn(*shape):
    return torch.randn(*shape)


def check_dynamic(fn, make, axes, **kwargs):
    """Export ``fn(*make(B, T))`` with ``axes`` ({input index: {axis: "B" or "T"}}) dynamic;
    check it at two other (B, T) and that nothing was specialized."""
    args = make(**SIZES[0])
    names = [f"in{i}" for i in range(len(args))]
    exported = check_export(
        fn, args, input_names=names, dynamic_axes={names[i]: a for i, a in axes.items()},
        other_inputs=[make(**s) for s in SIZES[1:]], **kwargs,
    )
    assert exported.specializations == []
    return exported


def ops(exported) -> list[str]:
    return [node.op_type for node in exported.graph]


# -- static shapes ----------------------------------------------------------------------------
X = randn(2, 3, 4)
IDX = torch.tensor([2, 0, -1])
STATIC = {
    "view": (lambda x: x.view(4, -1), X),
    "view_tuple": (lambda x: x.view((3, 8)), X),
    "reshape": (lambda x: torch.reshape(x, (-1,)), X),
    "reshape_as": (lambda x, y: x.reshape_as(y) + y, X, randn(6, 4)),
    "view_as": (lambda x, y: x.view_as(y), X, randn(4, 6)),
    "flatten": (lambda x: x.flatten(), X),
    "flatten_1": (lambda x: torch.flatten(x, 1), X),
    "flatten_01": (lambda x: x.flatten(0, 1), X),
    "flatten_0d": (lambda x: x[0, 0, 0].flatten(), X),
    "ravel": (lambda x: x.ravel(), X),
    "unflatten": (lambda x: x.unflatten(2, (2, -1)), X),
    "squeeze_all": (lambda x: x.squeeze(), randn(1, 3, 1, 2)),
    "squeeze_dim": (lambda x: x.squeeze(-2), randn(1, 3, 1, 2)),
    "squeeze_dims": (lambda x: torch.squeeze(x, (0, 1)), randn(1, 3, 1, 2)),
    "squeeze_noop": (lambda x: x.squeeze(1), X),
    "unsqueeze": (lambda x: x.unsqueeze(0).unsqueeze(-1), X),
    "permute": (lambda x: x.permute(2, 0, 1), X),
    "permute_tuple": (lambda x: torch.permute(x, (0, 2, 1)), X),
    "transpose": (lambda x: x.transpose(0, -1), X),
    "swapaxes": (lambda x: torch.swapaxes(x, 1, 2), X),
    "t": (lambda x: x.t(), randn(3, 4)),
    "t_1d": (lambda x: x.t() + 1, randn(3)),
    "T": (lambda x: x.T, randn(3, 4)),
    "mT": (lambda x: x.mT, X),
    "movedim": (lambda x: x.movedim(0, -1), X),
    "expand": (lambda x: x.expand(3, -1, 4), randn(1, 5, 1)),
    "expand_new_dims": (lambda x: x.expand(2, 3, 4), randn(4)),
    "expand_as": (lambda x, y: x.expand_as(y), randn(3, 1), randn(3, 4)),
    "broadcast_to": (lambda x: torch.broadcast_to(x, (2, 3)), randn(3)),
    "repeat": (lambda x: x.repeat(2, 1, 3), X),
    "repeat_more_dims": (lambda x: x.repeat(2, 1, 1, 1), X),
    "tile": (lambda x: x.tile((2,)), X),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, dim=1), X),
    "repeat_interleave_flat": (lambda x: torch.repeat_interleave(x, 3), randn(2, 2)),
    "cat": (lambda x, y: torch.cat([x, y], dim=-1), X, randn(2, 3, 2)),
    "cat_promote": (lambda x, y: torch.cat((x, y)), randn(2, 3), torch.ones(1, 3, dtype=torch.int64)),
    "concat_const": (lambda x: torch.concat([x, torch.zeros(2, 3, 1)], 2), X),
    "stack": (lambda x, y: torch.stack([x, y], 1), X, X + 1),
    "stack_last": (lambda x: torch.stack((x, x * 2), dim=-1), X),
    "hstack": (lambda x, y: torch.hstack((x, y)), randn(2, 3), randn(2, 1)),
    "vstack": (lambda x, y: torch.vstack((x, y)), randn(3), randn(2, 3)),
    "split": (lambda x: x.split(3, dim=-1), X),
    "split_sizes": (lambda x: torch.split(x, [1, 2], dim=1), X),
    "split_with_sizes": (lambda x: x.split_with_sizes([3, 1], 2), X),
    "chunk": (lambda x: x.chunk(3, dim=-1), X),
    "unbind": (lambda x: x.unbind(1), X),
    "narrow": (lambda x: x.narrow(2, 1, 2), X),
    "narrow_negative": (lambda x: torch.narrow(x, 1, -2, 2), X),
    "contiguous": (lambda x: x.transpose(0, 1).contiguous(), X),
    "clone": (lambda x: x.clone() * 2, X),
    "flip": (lambda x: x.flip(0, 2), X),
    "fliplr": (lambda x: torch.fliplr(x) + torch.flipud(x), X),
    "roll": (lambda x: x.roll(1, 2), X),
    "roll_dims": (lambda x: torch.roll(x, (1, -1), (0, 1)), X),
    "roll_flat": (lambda x: x.roll(5), X),
    "roll_multiple": (lambda x: x.roll(7, -1), X),
}


@pytest.mark.parametrize("name", list(STATIC))
def test_static_shape_op(name):
    fn, *args = STATIC[name]
    check_export(fn, tuple(args))


# -- indexing (static) -------------------------------------------------------------------------
def set_slice(x, y):
    x = x.clone()
    x[:, 1:3] = y
    return x


def set_int_scalar(x):
    x = x.clone()
    x[0, -1] = 5.0
    return x


def set_index_tensor(x, i):
    x = x.clone()
    x[i] = 0
    return x


def set_broadcast(x, y):
    x = x.clone()
    x[..., -1] = y
    return x


def set_mask(x, m):
    x = x.clone()
    x[m] = -1.0
    return x


def set_mask_tensor_value(x, m, v):
    x = x.clone()
    x[m] = v
    return x


def augmented_slice(x):
    x = x.clone()
    x[:, :2] += 1
    return x


def augmented_index(x, i):
    x = x.clone()
    x[:, i] *= 2
    return x


def put_accumulate(x, i, v):
    return x.index_put((i,), v, accumulate=True)


def put_inplace(x, i, j, v):
    x = x.clone()
    x.index_put_((i, j), v)
    return x


def masked_fill_inplace(x, m):
    x = x.clone()
    x.masked_fill_(m, 0.5)
    return x


def scatter_inplace(x, i, s):
    x = x.clone()
    x.scatter_(1, i, s)
    return x


M = torch.tensor([[True, False, True], [False, False, True]])
I2 = torch.tensor([[0, 2, 1], [1, 1, 0]])
INDEXING = {
    "int": (lambda x: x[1], X),
    "negative_int": (lambda x: x[-1, -2], X),
    "slice": (lambda x: x[:, 1:3], X),
    "slice_step": (lambda x: x[::2, :, 1::2], X),
    "slice_negative": (lambda x: x[:, -2:, :-1], X),
    "none": (lambda x: x[None, :, None], X),
    "ellipsis": (lambda x: x[..., 0], X),
    "ellipsis_middle": (lambda x: x[0, ..., 1:], X),
    "mixed": (lambda x: x[1, None, ..., ::3], X),
    "tensor": (lambda x, i: x[i], randn(4, 3), IDX),
    "tensor_2d": (lambda x, i: x[:, i], X, I2),
    "tensor_last": (lambda x, i: x[..., i], X, torch.tensor([3, 0])),
    "tensor_0d": (lambda x, i: x[:, i], X, torch.tensor(2)),
    "list": (lambda x: x[[0, 1, 0]], X),
    "two_tensors": (lambda x, i, j: x[i, j], X, torch.tensor([1, 0]), torch.tensor([[2], [0]])),
    "two_tensors_middle": (lambda x, i, j: x[:, i, j], X, torch.tensor([1, 0, 2]), torch.tensor([3, 0, 1])),
    "separated_tensors": (lambda x, i, j: x[i, :, j], X, torch.tensor([1, 0]), torch.tensor([3, 0])),
    "tensor_and_int": (lambda x, i: x[1, :, i], X, torch.tensor([3, 0])),
    "tensor_and_slice": (lambda x, i: x[i, 1:], X, torch.tensor([1, -2])),
    "int32_index": (lambda x, i: x[i], X, torch.tensor([1, 0], dtype=torch.int32)),
    "set_slice": (set_slice, X, randn(2, 2, 4)),
    "set_int": (set_int_scalar, X),
    "set_tensor": (set_index_tensor, randn(5, 2), torch.tensor([0, 3])),
    "set_broadcast": (set_broadcast, X, randn(3)),
    "set_mask": (set_mask, randn(2, 3, 4), M),
    "set_mask_tensor_value": (set_mask_tensor_value, randn(2, 3, 4), M, torch.tensor(2.5)),
    "augmented_slice": (augmented_slice, X),
    "augmented_index": (augmented_index, X, torch.tensor([0, 2])),
    "index_put_accumulate": (put_accumulate, torch.zeros(4, 2), torch.tensor([0, 2, 0]), randn(3, 2)),
    "index_put_": (put_inplace, X, torch.tensor([0, 1]), torch.tensor([2, 0]), randn(2, 4)),
    "index_select": (lambda x, i: x.index_select(1, i), X, torch.tensor([2, 0])),
    "index_select_0d": (lambda x, i: torch.index_select(x, -1, i), X, torch.tensor(3)),
    "gather": (lambda x, i: x.gather(1, i.unsqueeze(-1).expand(-1, -1, 4)), X, I2),
    "gather_smaller_index": (lambda x, i: torch.gather(x, 2, i), randn(3, 4, 5), torch.tensor([[[4, 0]], [[1, 1]]])),
    "take_along_dim": (lambda x, i: torch.take_along_dim(x, i, dim=1), randn(2, 3), torch.tensor([[2], [0]])),
    "scatter": (lambda x, i, s: x.scatter(1, i, s), torch.zeros(2, 3), I2[:, :2], randn(2, 2)),
    "scatter_larger_src": (lambda x, i, s: torch.scatter(x, 0, i, s), torch.zeros(3, 3), torch.tensor([[0, 1, 2]]), randn(2, 3)),
    "scatter_value": (lambda x, i: x.scatter(1, i, 7.0), torch.zeros(2, 3), I2[:, :1]),
    "scatter_reduce_prod": (lambda x, i, s: torch.scatter_reduce(x, 1, i, s, "prod"), torch.ones(2, 3), I2, randn(2, 3)),
    "scatter_": (scatter_inplace, torch.zeros(2, 3), I2[:, :2], randn(2, 2)),
    "scatter_add": (lambda x, i, s: x.scatter_add(1, i, s), torch.zeros(2, 3), I2, randn(2, 3)),
    "scatter_reduce_amax": (lambda x, i, s: x.scatter_reduce(1, i, s, "amax"), torch.zeros(2, 3), I2, randn(2, 3)),
    "index_fill": (lambda x, i: x.index_fill(1, i, -1.0), X, torch.tensor([2, 0])),
    "index_copy": (lambda x, i, s: x.index_copy(0, i, s), randn(4, 2), torch.tensor([3, 1]), randn(2, 2)),
    "index_add": (lambda x, i, s: x.index_add(1, i, s, alpha=2), randn(2, 3), torch.tensor([0, 2, 0]), randn(2, 3)),
    "masked_scatter": (lambda x, m, s: x.masked_scatter(m, s), randn(2, 3), M, randn(9)),
    "masked_scatter_broadcast": (lambda x, m, s: x.masked_scatter(m[0], s), randn(2, 3), M, randn(2, 3)),
    "masked_fill": (lambda x, m: x.masked_fill(m, float("-inf")), randn(2, 3), M),
    "masked_fill_broadcast": (lambda x, m: torch.masked_fill(x, m[0], 0.0), randn(2, 3), M),
    "masked_fill_tensor": (lambda x, m: x.masked_fill(m, x[0, 0]), randn(2, 3), M),
    "masked_fill_": (masked_fill_inplace, randn(2, 3), M),
    "masked_fill_int": (lambda x, m: x.masked_fill(m, 3), torch.arange(6).reshape(2, 3), M),
    "where": (lambda c, a, b: torch.where(c, a, b), M, randn(2, 3), randn(3)),
    "where_scalars": (lambda c: torch.where(c, 1.0, 0.0), M),
    "where_scalar_other": (lambda c, a: torch.where(c, a, 0), M, torch.arange(3)),
    "where_promote": (lambda c, a, b: torch.where(c, a, b), M, torch.ones(2, 3, dtype=torch.int64), randn(2, 3)),
    "where_method": (lambda c, a, b: a.where(c, b), M, randn(2, 3), randn(2, 3)),
}


@pytest.mark.parametrize("name", list(INDEXING))
def test_indexing(name):
    fn, *args = INDEXING[name]
    check_export(fn, tuple(args))


@pytest.mark.parametrize(
    "index", [lambda x, m: x[m], lambda x, m: x[0, m[0]], lambda x, m: x.masked_select(m)],
    ids=["mask", "mask_row", "masked_select"],
)
def test_reading_by_boolean_mask_is_unsupported(index):
    with pytest.raises(ferry.UnsupportedOperatorError, match="data-dependent number of elements"):
        ferry.export(index, (randn(2, 3), M))


def test_where_single_argument_is_unsupported():
    with pytest.raises(ferry.UnsupportedOperatorError, match="data-dependent"):
        ferry.export(lambda c: torch.where(c), (M,))


# -- creation and conversion (static) -------------------------------------------------------
CREATION = {
    "zeros_like": (lambda x: torch.zeros_like(x) + x, X),
    "ones_like_dtype": (lambda x: torch.ones_like(x, dtype=torch.int64), X),
    "full_like": (lambda x: torch.full_like(x, 2.5), X),
    "empty_like_fill": (lambda x: torch.empty_like(x).fill_(3.0), X),
    "zero_": (lambda x: x.clone().zero_(), X),
    "fill_tensor": (lambda x: torch.zeros(2, 3).fill_(x[0, 0, 0]), X),
    "new_zeros": (lambda x: x.new_zeros(2, 3), X),
    "new_ones": (lambda x: x.new_ones((4,), dtype=torch.int32), X),
    "new_full": (lambda x: x.new_full((2, 2), -1.5), X),
    "new_tensor": (lambda x: x.new_tensor([1.0, 2.0]), X),
    "arange_from_tensor": (lambda n: torch.arange(n), torch.tensor(4)),
    "to_dtype": (lambda x: x.to(torch.int64), X * 3),
    "to_dtype_kw": (lambda x: x.to(dtype=torch.float16), X),
    "to_device": (lambda x: x.to("cpu") + x.cpu(), X),
    "to_tensor": (lambda x, y: x.to(y), X, torch.ones(1, dtype=torch.float64)),
    "float": (lambda x: x.float(), torch.arange(6)),
    "double": (lambda x: x.double(), X),
    "half": (lambda x: x.half(), X),
    "long": (lambda x: x.long(), X * 3),
    "int": (lambda x: x.int(), X * 3),
    "bool": (lambda x: x.bool(), torch.tensor([0.0, 1.5, -2.0])),
    "byte": (lambda x: x.byte(), torch.tensor([0.0, 1.5, 200.0])),
    "type_as": (lambda x, y: x.type_as(y), X, torch.ones(1, dtype=torch.int32)),
    "type": (lambda x: x.type(torch.int32), X * 3),
    "same_dtype": (lambda x: x.float(), X),
}


@pytest.mark.parametrize("name", list(CREATION))
def test_creation(name):
    fn, *args = CREATION[name]
    check_export(fn, tuple(args))


def test_random_like_ops_are_exported_as_random_nodes():
    """Samples differ from torch's, so the test zeroes them (onnxruntime has these ops to opset 21)."""
    fn = lambda x: torch.rand_like(x) * 0 + torch.randn_like(x) * 0 + x  # noqa: E731
    exported = check_export(fn, (X,), opset_version=21)
    assert {"RandomUniformLike", "RandomNormalLike"} <= set(ops(exported))


def test_in_place_change_of_a_constant_keeps_its_data_before_the_change():
    def fn(x):
        buf = torch.zeros(3)
        buf.add_(x)
        return buf

    check_export(fn, (torch.ones(3),))


def test_view_with_another_dtype_is_unsupported():
    with pytest.raises(ferry.UnsupportedOperatorError, match="reinterprets"):
        ferry.export(lambda x: x.view(torch.int32), (X,))


@pytest.mark.parametrize("opset", [17, 18])
def test_older_opsets(opset):
    def fn(x, i):
        a, b = x.split([1, 3], dim=-1)
        y = x.squeeze(0).unsqueeze(1)[:, :, i]
        return a.flip(-1), b.scatter_add(2, i.expand(1, 3, 2), b[..., :2]), y.roll(1, 0)

    check_export(fn, (randn(1, 3, 4), torch.tensor([2, 0])), opset_version=opset)


# -- dynamic axes: sizes read from the inputs --------------------------------------------------
def seq(B, T):
    return (randn(B, T, 8),)


def seq_and_index(B, T):
    return randn(B, T, 8), torch.randint(0, 4, (3,))


def seq_and_mask(B, T):
    return randn(B, T, 8), torch.rand(B, T) > 0.5


def set_first_half(x):
    x = x.clone()
    x[:, : x.size(1) // 2] = 0
    return x


def set_last_step(x):
    x = x.clone()
    x[:, -1] = x[:, 0] * 2
    return x


def fill_mask(x, m):
    x = x.clone()
    x[m] = 0.0
    return x


def position_table(x):
    T = x.size(1)
    pos = torch.arange(T).float()[:, None]
    table = torch.zeros(T, 8)
    table[:, 0::2] = pos * 0.5
    table[:, 1::2] = -pos
    return x + table


def write_into_constant(x):
    pad = torch.zeros(1, 8)
    pad[0, :4] = x[0, 0, :4]
    y = torch.cat([pad.expand(x.size(0), -1)[:, None], x], 1)
    return y.view(y.size(0), y.size(1), 2, 4)


def split_halves(x):
    T = x.size(1)
    return x.split([T // 2, T - T // 2], dim=1)


def positions(x):
    B, T = x.shape[:2]
    return torch.arange(T).unsqueeze(0).expand(B, -1)


DYNAMIC = {
    "view_batch": (lambda x: x.view(x.size(0), -1), lambda B, T: (randn(B, 3, 4),), {0: {0: "B"}}),
    "reshape_heads": (lambda x: x.reshape(x.shape[0], x.shape[1], 2, -1), seq, {0: {0: "B", 1: "T"}}),
    "view_merge": (lambda x: x.view(-1, x.size(-1)), seq, {0: {0: "B", 1: "T"}}),
    "view_shape_prefix": (lambda x: x.reshape(*x.shape[:2], 4, 2), seq, {0: {0: "B", 1: "T"}}),
    "view_other_shape": (lambda x, y: x.view(y.shape), lambda B, T: (randn(B, 6), randn(B, 2, 3)), {0: {0: "B"}, 1: {0: "B"}}),
    "reshape_symint_product": (lambda x: x.reshape(x.size(0) * x.size(1), 8), seq, {0: {0: "B", 1: "T"}}),
    "flatten": (lambda x: x.flatten(1), seq, {0: {0: "B", 1: "T"}}),
    "flatten_01": (lambda x: x.flatten(0, 1), seq, {0: {0: "B", 1: "T"}}),
    "unflatten": (lambda x: x.unflatten(-1, (2, 4)).transpose(1, 2), seq, {0: {0: "B", 1: "T"}}),
    "squeeze_unsqueeze": (lambda x: x[:, None].squeeze(1).unsqueeze(-1), seq, {0: {0: "B", 1: "T"}}),
    "permute": (lambda x: x.permute(2, 0, 1).mT, seq, {0: {0: "B", 1: "T"}}),
    "expand_batch": (lambda x, c: torch.cat([c.expand(x.size(0), -1, -1), x], dim=1), lambda B, T: (*seq(B, T), randn(1, 1, 8)), {0: {0: "B", 1: "T"}}),
    "expand_time": (lambda x: x[:, :1].expand(-1, x.size(1), -1), seq, {0: {0: "B", 1: "T"}}),
    "expand_as": (lambda x: x[:, :1].expand_as(x), seq, {0: {0: "B", 1: "T"}}),
    "repeat": (lambda x: x.repeat(1, 2, 1), seq, {0: {0: "B", 1: "T"}}),
    "repeat_symint": (lambda x: x[:1].repeat(x.size(0), 1, 1), seq, {0: {0: "B", 1: "T"}}),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, dim=1), seq, {0: {0: "B", 1: "T"}}),
    "cat_stack": (lambda x: torch.stack([x, torch.cat([x[:, 1:], x[:, :1]], 1)], -1), seq, {0: {0: "B", 1: "T"}}),
    "split_sizes": (split_halves, seq, {0: {0: "B", 1: "T"}}),
    "chunk_time": (lambda x: x.chunk(2, dim=1), seq, {0: {0: "B", 1: "T"}}),
    "chunk_features": (lambda x: x.chunk(4, dim=-1), seq, {0: {0: "B", 1: "T"}}),
    "split_features": (lambda x: x.split(3, dim=-1), seq, {0: {0: "B", 1: "T"}}),
    "unbind": (lambda x: x.view(x.size(0), x.size(1), 2, 4).unbind(2), seq, {0: {0: "B", 1: "T"}}),
    "narrow_length": (lambda x: x.narrow(1, 1, x.size(1) - 1), seq, {0: {0: "B", 1: "T"}}),
    "narrow_start": (lambda x: x.narrow(1, x.size(1) - 2, 2), seq, {0: {0: "B", 1: "T"}}),
    "flip": (lambda x: x.flip(1), seq, {0: {0: "B", 1: "T"}}),
    "roll": (lambda x: x.roll(7, 1), seq, {0: {0: "B", 1: "T"}}),
    "roll_negative": (lambda x: torch.roll(x, -2, dims=1), seq, {0: {0: "B", 1: "T"}}),
    "roll_flat": (lambda x: x.roll(3), seq, {0: {0: "B", 1: "T"}}),
    "slice_half": (lambda x: x[:, : x.size(1) // 2], seq, {0: {0: "B", 1: "T"}}),
    "slice_last": (lambda x: x[:, -1], seq, {0: {0: "B", 1: "T"}}),
    "slice_from_symint": (lambda x: x[:, x.size(1) // 2 :: 2], seq, {0: {0: "B", 1: "T"}}),
    "slice_symint_tail": (lambda x: x[-x.size(0) :, 1 - x.size(1) :], seq, {0: {0: "B", 1: "T"}}),
    "slice_symint_index": (lambda x: x[:, x.size(1) - 1], seq, {0: {0: "B", 1: "T"}}),
    "slice_steps": (lambda x: x[:, 1::2, ::3], seq, {0: {0: "B", 1: "T"}}),
    "slice_inner": (lambda x: x[..., 1:-1, None], seq, {0: {0: "B", 1: "T"}}),
    "index_tensor": (lambda x, i: x[:, i], seq_and_index, {0: {0: "B", 1: "T"}}),
    "index_two_tensors": (lambda x, i: x[i % x.size(0), -i], seq_and_index, {0: {0: "B", 1: "T"}}),
    "masked_scatter": (lambda x, m: x.masked_scatter(m[..., None], -x), seq_and_mask, {0: {0: "B", 1: "T"}, 1: {0: "B", 1: "T"}}),
    "index_add": (lambda x, i: x.index_add(1, i, x[:, :3]), seq_and_index, {0: {0: "B", 1: "T"}}),
    "index_dynamic_count": (lambda x, i: x[i], lambda B, T: (randn(6, 3), torch.randint(-6, 6, (T,))), {1: {0: "T"}}),
    "set_first_half": (set_first_half, seq, {0: {0: "B", 1: "T"}}),
    "set_last_step": (set_last_step, seq, {0: {0: "B", 1: "T"}}),
    "position_table": (position_table, seq, {0: {0: "B", 1: "T"}}),
    "write_into_constant": (write_into_constant, seq, {0: {0: "B", 1: "T"}}),
    "set_mask": (fill_mask, seq_and_mask, {0: {0: "B", 1: "T"}, 1: {0: "B", 1: "T"}}),
    "masked_fill": (lambda x, m: x.masked_fill(m[..., None], -1.0), seq_and_mask, {0: {0: "B", 1: "T"}, 1: {0: "B", 1: "T"}}),
    "where": (lambda x, m: torch.where(m[..., None], x, 0.0), seq_and_mask, {0: {0: "B", 1: "T"}, 1: {0: "B", 1: "T"}}),
    "gather_time": (lambda x: x.gather(1, torch.zeros_like(x, dtype=torch.long)), seq, {0: {0: "B", 1: "T"}}),
    "index_select": (lambda x, i: x.index_select(1, i), seq_and_index, {0: {0: "B", 1: "T"}}),
    "scatter": (lambda x: torch.zeros_like(x).scatter(1, torch.zeros_like(x, dtype=torch.long), x), seq, {0: {0: "B", 1: "T"}}),
    "arange": (lambda x: torch.arange(x.shape[1]), seq, {0: {0: "B", 1: "T"}}),
    "arange_bounds": (lambda x: torch.arange(1, x.size(1), 2), seq, {0: {0: "B", 1: "T"}}),
    "arange_float": (lambda x: torch.arange(x.size(1), dtype=torch.float32) * 0.5 + x[0, :, 0], seq, {0: {0: "B", 1: "T"}}),
    "arange_add": (lambda x: x + torch.arange(x.size(1)).view(1, -1, 1), seq, {0: {0: "B", 1: "T"}}),
    "positions": (positions, seq, {0: {0: "B", 1: "T"}}),
    "zeros": (lambda x: torch.zeros(x.size(0), 4), seq, {0: {0: "B", 1: "T"}}),
    "ones_tuple": (lambda x: torch.ones((x.size(0), x.size(1)), dtype=torch.int64), seq, {0: {0: "B", 1: "T"}}),
    "full": (lambda x: torch.full((x.size(1), 2), 3.5), seq, {0: {0: "B", 1: "T"}}),
    "empty_fill": (lambda x: torch.empty(x.size(0), 3).fill_(1.0), seq, {0: {0: "B", 1: "T"}}),
    "zeros_shape": (lambda x: torch.zeros(x.shape[:2]), seq, {0: {0: "B", 1: "T"}}),
    "zeros_like": (lambda x: torch.zeros_like(x) + 1, seq, {0: {0: "B", 1: "T"}}),
    "full_like": (lambda x: torch.full_like(x, 7, dtype=torch.int32), seq, {0: {0: "B", 1: "T"}}),
    "new_zeros": (lambda x: x.new_zeros(x.shape), seq, {0: {0: "B", 1: "T"}}),
    "new_ones": (lambda x: x.new_ones(x.size(0), 2), seq, {0: {0: "B", 1: "T"}}),
    "eye": (lambda x: torch.eye(x.size(1)), seq, {0: {0: "B", 1: "T"}}),
    "eye_rect": (lambda x: torch.eye(x.size(1), x.size(0), dtype=torch.int64), seq, {0: {0: "B", 1: "T"}}),
    "tensor_of_sizes": (lambda x: torch.tensor([x.size(0), x.size(1)]), seq, {0: {0: "B", 1: "T"}}),
    "to_long": (lambda x: (x * 4).long().to(torch.float16).type_as(x), seq, {0: {0: "B", 1: "T"}}),
    "rand_like": (lambda x: torch.rand_like(x).mul(0), seq, {0: {0: "B", 1: "T"}}),
}


@pytest.mark.parametrize("name", list(DYNAMIC))
def test_dynamic(name):
    fn, make, axes = DYNAMIC[name]
    check_dynamic(fn, make, axes, opset_version=21 if "rand" in name else None)


def test_static_creation_becomes_a_constant():
    exported = check_export(lambda x: x + torch.zeros(3, 4) + torch.arange(4), (randn(3, 4),))
    assert not {"ConstantOfShape", "Range"} & set(ops(exported))


def test_dynamic_sizes_are_not_specializations_in_strict_mode():
    fn, make, axes = DYNAMIC["reshape_heads"]
    ferry.export(fn, make(**SIZES[0]), input_names=["in0"], dynamic_axes={"in0": axes[0]}, strict=True)


def test_split_count_over_a_dynamic_axis_is_a_specialization():
    with pytest.warns(ferry.TracerWarning, match="pieces"):
        exported = ferry.export(lambda x: x.split(4, dim=1), seq(2, 6), input_names=["x"],
                                dynamic_axes={"x": {1: "T"}}, check=False)
    assert [s.kind for s in exported.specializations] == ["dynamic-size"]


def test_writing_a_tensor_through_a_mask_is_unsupported():
    with pytest.raises(ferry.UnsupportedOperatorError, match="data-dependent"):
        ferry.export(set_mask_tensor_value, (randn(2, 3), M, randn(3)))


# -- models ---------------------------------------------------------------------------------
class PatchEmbedding(torch.nn.Module):
    """ViT input: patches flattened, projected, a class token expanded over the batch."""

    def __init__(self, patch=4, channels=3, dim=16, patches=4):
        super().__init__()
        self.patch = patch
        self.proj = torch.nn.Linear(channels * patch * patch, dim)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.pos = torch.nn.Parameter(torch.randn(1, patches + 1, dim))

    def forward(self, x):
        B, C, H, W = x.shape
        p = self.patch
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).flatten(3).flatten(1, 2)
        x = torch.cat([self.cls.expand(B, -1, -1), self.proj(x)], dim=1)
        return x + self.pos[:, : x.size(1)]


class Attention(torch.nn.Module):
    """Multi-head attention's reshapes with grouped key/value heads (no softmax: the
    shapes are what is tested)."""

    def __init__(self, dim=16, heads=4, kv_heads=2):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.q = torch.nn.Linear(dim, dim)
        self.kv = torch.nn.Linear(dim, 2 * kv_heads * self.head_dim)

    def forward(self, x, pad):
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.heads, -1).transpose(1, 2)
        k, v = self.kv(x).reshape(B, T, 2, self.kv_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v[:, :, None].expand(-1, -1, self.heads // self.kv_heads, -1, -1).flatten(1, 2)
        att = (q @ k.mT) * self.head_dim**-0.5
        att = att.masked_fill(pad[:, None, None, :], 0.0)
        return (att @ v).transpose(1, 2).contiguous().view(B, T, C)


def test_patch_embedding_with_dynamic_batch():
    check_dynamic(PatchEmbedding(), lambda B, T: (randn(B, 3, 8, 8),), {0: {0: "B"}})


def test_attention_with_dynamic_batch_and_time():
    make = lambda B, T: (randn(B, T, 16), torch.rand(B, T) > 0.7)  # noqa: E731
    check_dynamic(Attention(), make, {0: {0: "B", 1: "T"}, 1: {0: "B", 1: "T"}}, rtol=1e-3, atol=1e-4)
