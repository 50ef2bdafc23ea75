"""CNN layers: convolutions, normalizations, pooling, resizing, padding, embedding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ferry
from tests.trace.helpers import check_export

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """torch's thread pool thrashes on a shared machine: small CNNs run far faster on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(model, shape, dynamic=(0,), grow=(1, 3), dtype=torch.float32, **tolerances):
    """Export ``model`` on a random input of ``shape`` with ``dynamic`` axes, checked at
    sizes grown by each of ``grow`` along them."""
    torch.manual_seed(0)

    def make(extra):
        dims = [s + extra if a in dynamic else s for a, s in enumerate(shape)]
        if dtype.is_floating_point:
            return torch.randn(*dims, dtype=dtype)
        return torch.randint(0, 10, dims, dtype=dtype)

    axes = {"x": {a: f"d{a}" for a in dynamic}} if dynamic else None
    return check_export(model, (make(0),), input_names=["x"], dynamic_axes=axes,
                        other_inputs=[(make(e),) for e in grow] if dynamic else [], **tolerances)


def ops(model) -> list[str]:
    return [n.op_type for n in model.graph]


# -- convolutions ----------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [
    (nn.Conv1d(3, 4, 3), (2, 3, 10)),
    (nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=2, groups=2), (2, 4, 17)),
    (nn.Conv1d(3, 4, 4, padding="same"), (2, 3, 9)),
    (nn.Conv2d(3, 8, 3, padding=1), (2, 3, 12, 12)),
    (nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=4), (1, 4, 11, 9)),
    (nn.Conv2d(3, 6, (4, 3), padding="same", dilation=(1, 2), bias=False), (2, 3, 9, 8)),
    (nn.Conv2d(3, 6, 3, padding="valid"), (2, 3, 8, 8)),
    (nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect"), (2, 3, 8, 8)),
    (nn.Conv2d(3, 4, 3, padding=1, padding_mode="replicate"), (2, 3, 8, 8)),
    (nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="circular"), (2, 3, 8, 8)),
    (nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1), (2, 2, 6, 8, 8)),
    (nn.ConvTranspose1d(4, 3, 4, stride=2, padding=1), (2, 4, 7)),
    (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 6)),
    (nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), groups=2, dilation=(2, 1)), (2, 4, 5, 6)),
    (nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1, output_padding=(1, 0, 1)), (1, 2, 3, 4, 4)),
])
def test_conv(layer, shape):
    run(layer, shape, dynamic=(0, len(shape) - 1))


def test_conv_unbatched_input():
    run(nn.Conv2d(3, 4, 3, padding=1), (3, 8, 8), dynamic=(2,))


def test_conv_functional_with_traced_weight():
    def fn(x, w):
        return F.conv2d(x, w, stride=2, padding=1)

    check_export(fn, (torch.randn(1, 4, 8, 8), torch.randn(6, 4, 3, 3)))


# -- normalizations ----------------------------------------------------------------------
def _with_stats(norm):
    """A norm layer with non-trivial running statistics and affine parameters."""
    torch.manual_seed(1)
    for name, buffer in norm.named_buffers():
        if name == "running_mean":
            buffer.copy_(torch.randn_like(buffer))
        elif name == "running_var":
            buffer.copy_(torch.rand_like(buffer) + 0.5)
    for param in norm.parameters():
        param.data.copy_(torch.randn_like(param))
    return norm.eval()


@pytest.mark.parametrize("layer, shape", [
    (nn.BatchNorm1d(5), (3, 5)),
    (nn.BatchNorm1d(5), (3, 5, 7)),
    (nn.BatchNorm2d(4), (2, 4, 6, 6)),
    (nn.BatchNorm2d(4, affine=False), (2, 4, 6, 6)),
    (nn.BatchNorm2d(4, track_running_stats=False), (2, 4, 6, 6)),
    (nn.BatchNorm3d(3), (2, 3, 4, 4, 4)),
    (nn.LayerNorm(8), (2, 5, 8)),
    (nn.LayerNorm((5, 8), elementwise_affine=False), (2, 5, 8)),
    (nn.LayerNorm(8, bias=False), (2, 3, 8)),
    (nn.GroupNorm(2, 6), (2, 6, 5, 5)),
    (nn.GroupNorm(3, 6, affine=False), (2, 6, 7)),
    (nn.InstanceNorm1d(4), (2, 4, 9)),
    (nn.InstanceNorm2d(4, affine=True), (2, 4, 6, 6)),
    (nn.InstanceNorm2d(4, affine=True, track_running_stats=True), (2, 4, 6, 6)),
])
def test_normalization(layer, shape):
    fixed = len(shape) == 2 or isinstance(layer, nn.LayerNorm)
    run(_with_stats(layer), shape, dynamic=(0,) if fixed else (0, len(shape) - 1))


@pytest.mark.parametrize("opset", [17, 18])
def test_layer_norm_opsets(opset):
    layer = _with_stats(nn.LayerNorm(6))
    exported = check_export(layer, (torch.randn(2, 3, 6),), opset_version=opset)
    assert "LayerNormalization" in ops(exported)


@pytest.mark.parametrize("opset", [16, None])
def test_layer_norm_over_dynamic_sizes(opset):
    run(lambda x: F.layer_norm(x, x.shape[-2:]), (2, 3, 5), dynamic=(0, 2), opset_version=opset)


def test_layer_norm_before_opset_17():
    layer = _with_stats(nn.LayerNorm((3, 6)))
    exported = check_export(layer, (torch.randn(2, 3, 6),), opset_version=16)
    assert "LayerNormalization" not in ops(exported)


@pytest.mark.parametrize("opset", [16, 18])
def test_batch_statistics_at_old_opsets(opset):
    check_export(nn.BatchNorm2d(3, track_running_stats=False), (torch.randn(4, 3, 5, 5),),
                 opset_version=opset)


# -- dropout, embedding, normalize -------------------------------------------------------
@pytest.mark.parametrize("layer", [nn.Dropout(0.3), nn.Dropout2d(), nn.AlphaDropout(0.2),
                                   nn.FeatureAlphaDropout()])
def test_dropout_is_identity_in_eval(layer):
    model = nn.Sequential(nn.Conv2d(3, 3, 1), layer)
    exported = run(model, (2, 3, 4, 4))
    assert "Dropout" not in ops(exported)  # at most an Identity


def test_dropout_in_training_mode_is_an_error():
    with pytest.raises(ferry.UnsupportedOperatorError, match="training mode"):
        ferry.export(lambda x: F.dropout(x, 0.5), (torch.randn(3),))


@pytest.mark.parametrize("max_norm", [None, 1.0])
def test_embedding(max_norm):
    torch.manual_seed(0)
    layer = nn.Embedding(10, 4, padding_idx=0, max_norm=max_norm)
    idx = torch.tensor([[1, 2, 0], [9, 9, 3]])
    check_export(layer, (idx,), input_names=["x"], dynamic_axes={"x": {0: "b", 1: "t"}},
                 other_inputs=[(torch.tensor([[4]]),), (torch.randint(0, 10, (3, 5)),)])


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 1)])
def test_normalize(p, dim):
    run(lambda x: F.normalize(x, p=p, dim=dim), (3, 5, 4), dynamic=(0,) if dim else (1,))


# -- pooling -------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [
    (nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 11)),
    (nn.MaxPool2d(2), (2, 3, 8, 8)),
    (nn.MaxPool2d((3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 3, 9, 8)),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 3, 10, 9)),
    (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 9, 10)),
    (nn.MaxPool3d(2, stride=(1, 2, 2)), (1, 2, 4, 6, 6)),
    (nn.AvgPool1d(3, stride=2, padding=1), (2, 3, 10)),
    (nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 10)),
    (nn.AvgPool2d(2), (2, 3, 8, 8)),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9, 9)),
    (nn.AvgPool2d(3, stride=2, ceil_mode=True), (2, 3, 10, 10)),
    (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 10, 10)),
    (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 10, 10)),
    (nn.AvgPool2d(2, divisor_override=3), (2, 3, 6, 6)),
    (nn.AvgPool3d((1, 2, 2)), (1, 2, 3, 4, 4)),
])
def test_pool(layer, shape):
    run(layer, shape, dynamic=(0, len(shape) - 1), grow=(1, 2))


@pytest.mark.parametrize("layer, shape", [
    (nn.MaxPool1d(2, return_indices=True), (2, 3, 8)),
    (nn.MaxPool2d(3, stride=2, padding=1, return_indices=True), (2, 3, 9, 7)),
    (nn.MaxPool2d(2, dilation=2, ceil_mode=True, return_indices=True), (1, 2, 7, 7)),
    (nn.MaxPool3d(2, return_indices=True), (2, 2, 4, 4, 4)),
    (nn.AdaptiveMaxPool2d((2, 3), return_indices=True), (2, 3, 8, 9)),
    (nn.AdaptiveMaxPool1d(1, return_indices=True), (2, 3, 8)),
    (nn.AdaptiveMaxPool2d(1, return_indices=True), (2, 3, 5, 7)),
    (nn.AdaptiveMaxPool3d((1, 1, 1), return_indices=True), (3, 2, 3, 4)),
])
def test_max_pool_indices(layer, shape):
    is_global = getattr(layer, "output_size", None) in (1, (1, 1, 1))
    run(layer, shape, dynamic=(0, len(shape) - 1) if is_global else (0,))


@pytest.mark.parametrize("size", [5, 6, 7])
@pytest.mark.parametrize("make", [
    lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True),
    lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True, return_indices=True),
    lambda: nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True),
    lambda: nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda: nn.AvgPool2d(3, stride=3, padding=1, ceil_mode=True),
])
def test_ceil_mode_last_window(make, size):
    """torch drops a last window that would start in the right padding."""
    run(make(), (1, 2, size, size), dynamic=())


@pytest.mark.parametrize("layer, shape, dynamic", [
    (nn.AdaptiveAvgPool2d(1), (2, 3, 7, 9), (0, 2, 3)),
    (nn.AdaptiveAvgPool2d((1, 1)), (2, 3, 7, 9), (0, 2, 3)),
    (nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 8, 9), (0,)),
    (nn.AdaptiveAvgPool2d((None, 2)), (2, 3, 5, 8), (0,)),
    (nn.AdaptiveAvgPool1d(4), (2, 3, 12), (0,)),
    (nn.AdaptiveAvgPool1d(1), (3, 12), (1,)),
    (nn.AdaptiveAvgPool3d(1), (1, 2, 3, 4, 5), (0, 4)),
    (nn.AdaptiveMaxPool2d(1), (2, 3, 7, 9), (0, 2, 3)),
    (nn.AdaptiveMaxPool2d((4, 3)), (2, 3, 8, 9), (0,)),
    (nn.AdaptiveMaxPool1d(2), (2, 3, 8), (0,)),
])
def test_adaptive_pool(layer, shape, dynamic):
    run(layer, shape, dynamic=dynamic)


def test_adaptive_avg_pool_uneven_windows():
    run(nn.AdaptiveAvgPool2d((3, 5)), (2, 3, 8, 7))
    run(nn.AdaptiveAvgPool1d(3), (3, 7), dynamic=(0,))
    run(nn.AdaptiveAvgPool3d((2, 3, 2)), (1, 2, 5, 7, 3))


@pytest.mark.parametrize("layer, shape, dynamic, match", [
    (nn.AdaptiveMaxPool2d(3), (1, 2, 8, 8), (), "divide"),
    (nn.AdaptiveAvgPool2d(2), (1, 2, 8, 8), (2,), "static spatial"),
])
def test_adaptive_pool_unsupported(layer, shape, dynamic, match):
    axes = {"x": list(dynamic)} if dynamic else None
    with pytest.raises(ferry.UnsupportedOperatorError, match=match):
        ferry.export(layer, (torch.randn(*shape),), input_names=["x"], dynamic_axes=axes)


def test_pool_unbatched_input():
    run(nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)), (3, 8, 8), dynamic=(0,))


# -- interpolate -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2),
    dict(scale_factor=(2, 3), mode="nearest"),
    dict(scale_factor=0.5),
    dict(scale_factor=1.7, recompute_scale_factor=True),
    dict(scale_factor=2, mode="nearest-exact"),
    dict(scale_factor=2, mode="bilinear"),
    dict(scale_factor=2, mode="bilinear", align_corners=True),
    dict(scale_factor=0.6, mode="bilinear"),
    dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True),
    dict(scale_factor=2, mode="bicubic"),
    dict(scale_factor=2, mode="bicubic", align_corners=True),
])
def test_interpolate_scale(kwargs):
    run(lambda x: F.interpolate(x, **kwargs), (2, 3, 6, 7), dynamic=(0, 2, 3))


@pytest.mark.parametrize("mode, align", [("nearest", None), ("nearest-exact", None),
                                         ("bilinear", False), ("bilinear", True),
                                         ("bicubic", False), ("area", None)])
@pytest.mark.parametrize("size", [(4, 6), (9, 14), (12, 5)])
def test_interpolate_size(mode, align, size):
    run(lambda x: F.interpolate(x, size=size, mode=mode, align_corners=align), (2, 3, 6, 7))


@pytest.mark.parametrize("mode, shape, scale", [("linear", (2, 3, 7), 2.5),
                                                ("trilinear", (1, 2, 3, 4, 5), 2),
                                                ("nearest", (2, 3, 7), 3)])
def test_interpolate_1d_3d(mode, shape, scale):
    run(lambda x: F.interpolate(x, scale_factor=scale, mode=mode), shape, dynamic=(0, len(shape) - 1))


def test_interpolate_to_dynamic_size():
    def fn(x, skip):
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([up, skip], dim=1)

    axes = {"x": {0: "n", 2: "h", 3: "w"}, "skip": {0: "n", 2: "h2", 3: "w2"}}
    check_export(fn, (torch.randn(2, 3, 4, 5), torch.randn(2, 2, 8, 10)), input_names=["x", "skip"],
                 dynamic_axes=axes, other_inputs=[(torch.randn(1, 3, 5, 6), torch.randn(1, 2, 10, 12)),
                                                  (torch.randn(3, 3, 3, 3), torch.randn(3, 2, 7, 5))])


def test_interpolate_size_from_arithmetic():
    run(lambda x: F.interpolate(x, size=(x.shape[2] * 2, x.shape[3] + 3)), (1, 2, 5, 6), dynamic=(2, 3))


def test_upsample_modules():
    model = nn.Sequential(nn.Upsample(scale_factor=2), nn.UpsamplingBilinear2d(scale_factor=2),
                          nn.UpsamplingNearest2d(size=(20, 20)))
    run(model, (1, 2, 4, 5))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size, scale", [((5, 4), None), ((24, 22), None), (None, 0.45)])
def test_interpolate_antialias(mode, size, scale):
    run(lambda x: F.interpolate(x, size=size, scale_factor=scale, mode=mode, antialias=True),
        (1, 2, 12, 11), dynamic=(0,) if size else (0, 2, 3))


# -- padding and pixel shuffle -----------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(1, 2), (2, 1, 0, 3), (1, 1, 2, 0, 1, 2)])
def test_pad(mode, pads):
    value = 1.5 if mode == "constant" else None
    shape = (2, 3, 5, 6, 7)[: len(pads) // 2 + 2]
    run(lambda x: F.pad(x, pads, mode=mode, value=value), shape, dynamic=(0, len(shape) - 1))


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_pad_old_opsets(mode, opset):
    check_export(lambda x: F.pad(x, (1, 2, 3, 0), mode=mode), (torch.randn(1, 2, 5, 6),),
                 opset_version=opset)


@pytest.mark.parametrize("layer", [nn.ZeroPad2d((1, 0, 2, 3)), nn.ConstantPad1d(2, -1.0),
                                   nn.ReflectionPad2d(2), nn.ReplicationPad3d(1), nn.CircularPad1d(2)])
def test_pad_modules(layer):
    shape = {nn.ConstantPad1d: (2, 3, 6), nn.CircularPad1d: (2, 3, 6), nn.ReplicationPad3d: (1, 2, 3, 4, 5)}
    run(layer, shape.get(type(layer), (2, 3, 6, 7)))


@pytest.mark.parametrize("mode, opset", [("constant", None), ("circular", None), ("circular", 18)])
def test_pad_negative_crops(mode, opset):
    run(lambda x: F.pad(x, (-1, 2, 3, -2), mode=mode), (2, 3, 6, 7), dynamic=(0, 2, 3),
        opset_version=opset)


def test_pad_to_multiple_with_dynamic_sizes():
    def fn(x):
        h, w = x.shape[-2:]
        return F.pad(x, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8))

    run(fn, (1, 2, 10, 13), dynamic=(2, 3), grow=(3, 6))


@pytest.mark.parametrize("shape, dynamic", [((2, 18, 4, 5), (0, 2, 3)), ((18, 4, 5), (1,)),
                                            ((2, 3, 18, 4, 5), (0, 1, 3))])
def test_pixel_shuffle(shape, dynamic):
    exported = run(nn.PixelShuffle(3), shape, dynamic=dynamic)
    assert "DepthToSpace" in ops(exported)


@pytest.mark.parametrize("shape, dynamic", [((2, 3, 8, 6), (0,)), ((3, 4, 6), ()),
                                            ((2, 2, 3, 4, 8), (0, 1))])
def test_pixel_unshuffle(shape, dynamic):
    run(nn.PixelUnshuffle(2), shape, dynamic=dynamic)



# -- opsets, dtypes, direct aten calls, errors -------------------------------------------
@pytest.mark.parametrize("opset", [17, 18])
def test_reductions_at_opset(opset):
    torch.manual_seed(0)
    emb = nn.Embedding(6, 4, max_norm=0.5)
    norm = _with_stats(nn.GroupNorm(2, 4))

    def fn(x, idx):
        y = norm(F.normalize(x, dim=1) + F.normalize(x, p=3.0, dim=2))
        return y, emb(idx), F.pad(x, (1, 1), mode="circular")

    check_export(fn, (torch.randn(2, 4, 5), torch.tensor([[0, 5], [2, 2]])), opset_version=opset)


def test_float16_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2),
                          nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReflectionPad2d(1),
                          nn.GroupNorm(2, 4), nn.AdaptiveAvgPool2d(1))
    model = _with_stats(model).half()
    run(model, (2, 3, 6, 6), dtype=torch.float16, rtol=1e-2, atol=1e-2)


def test_direct_aten_calls():
    torch.manual_seed(0)
    w, b, mean, var = torch.randn(4), torch.randn(4), torch.randn(4), torch.rand(4) + 0.5
    table = torch.randn(7, 3)

    def fn(x, idx):
        y = torch.batch_norm(x, w, b, mean, var, False, 0.1, 1e-5, False)
        y = torch.instance_norm(y, w, b, None, None, True, 0.1, 1e-5, False)
        y = torch.group_norm(y, 2, w, b, 1e-5, False) + torch.layer_norm(y, [6], None, None, 1e-5, False)
        y = torch.max_pool2d(torch.constant_pad_nd(y, [1, 1, 0, 1], 0.5), 2)
        return torch.dropout(y, 0.5, False), torch.embedding(table, idx)

    check_export(fn, (torch.randn(2, 4, 5, 6), torch.tensor([1, 6])), input_names=["x", "idx"],
                 dynamic_axes={"x": [0], "idx": [0]},
                 other_inputs=[(torch.randn(1, 4, 5, 6), torch.tensor([3])),
                               (torch.randn(3, 4, 5, 6), torch.tensor([0, 2, 4, 5]))])


@pytest.mark.parametrize("fn, shape, axes, opset, match", [
    (lambda x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True), (1, 1, 4, 4), None, 17,
     "opset 18"),
    (lambda x: F.interpolate(x, size=(3, 3), mode="area"), (1, 1, 6, 6), [2], None, "static spatial"),
    (lambda x: F.adaptive_max_pool2d(x, 4), (1, 1, 6, 6), None, None, "divide"),
    (lambda x: F.avg_pool2d(x, 2, ceil_mode=True, divisor_override=3), (1, 1, 5, 5), None, None,
     "divisor_override"),
    (lambda x: F.pad(x, (x.shape[-1] // 2, 0), mode="circular"), (1, 1, 4), [2], 18, "circular"),
])
def test_unsupported_forms(fn, shape, axes, opset, match):
    with pytest.raises(ferry.UnsupportedOperatorError, match=match):
        ferry.export(fn, (torch.randn(*shape),), input_names=["x"], opset_version=opset,
                     dynamic_axes={"x": axes} if axes else None)
