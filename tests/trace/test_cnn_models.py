"""CNN model families exported with a dynamic batch axis and checked at two other sizes:
Conv1d/2d/3d nets, ResNet-50, MobileNetV2, MobileNetV3 (reduced widths, real block
structure) and the super-resolution network of the PyTorch ONNX tutorial."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferry.cli.models import SuperResolutionNet
from tests.trace.helpers import check_export

DEEP = dict(rtol=1e-3, atol=1e-4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """torch's thread pool thrashes on a shared machine: small CNNs run far faster on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize_norms(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so they matter in the check."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def check_batch(model, example_shape, batches=(1, 3), **tolerances):
    """Export with axis 0 dynamic and check at the other ``batches``."""
    torch.manual_seed(0)
    rest = tuple(example_shape[1:])
    return check_export(
        model, (torch.randn(*example_shape),), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        other_inputs=[(torch.randn(b, *rest),) for b in batches], **tolerances,
    )


def _conv_net(dims: int) -> nn.Module:
    conv, bn, pool, adaptive = {
        1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
        2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
        3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
    }[dims]
    return nn.Sequential(
        conv(3, 8, 3, padding=1), bn(8), nn.ReLU(), pool(2),
        conv(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Dropout(0.2),
        conv(16, 16, 3, padding=1, groups=4), adaptive(1), nn.Flatten(), nn.Linear(16, 5),
    )


def test_conv1d_net():
    check_batch(_conv_net(1).eval(), (2, 3, 32))


def test_conv2d_net():
    check_batch(_conv_net(2).eval(), (2, 3, 16, 16))


def test_conv3d_net():
    check_batch(_conv_net(3).eval(), (2, 3, 8, 8, 8))


# -- ResNet-50 -------------------------------------------------------------------------------
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != width:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """torchvision's ResNet-50 layout ([3, 4, 6, 3] bottlenecks) at 1/8 of the widths."""

    def __init__(self, base: int = 8, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, inplanes = [], base
        for index, blocks in enumerate([3, 4, 6, 3]):
            planes = base * 2**index
            stage = [Bottleneck(inplanes, planes, stride=1 if index == 0 else 2)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_resnet50():
    model = _randomize_norms(ResNet50())
    exported = check_batch(model, (2, 3, 64, 64), **DEEP)
    kinds = [n.op_type for n in exported.graph]
    assert kinds.count("Conv") == 53 and kinds.count("BatchNormalization") == 53
    assert any("layer3.5.conv2" in n.name for n in exported.graph)  # module scopes


# -- MobileNetV2 / V3 ------------------------------------------------------------------------
def _divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(cin, cout, kernel=3, stride=1, groups=1, act=nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 settings (t, c, n, s) with a width multiplier."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, width: float = 0.25, num_classes: int = 10):
        super().__init__()
        cin, last = _divisible(32 * width), _divisible(1280 * width)
        layers = [_conv_bn(3, cin, stride=2)]
        for t, c, n, s in self.SETTINGS:
            cout = _divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        self.features = nn.Sequential(*layers, _conv_bn(cin, last, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def test_mobilenet_v2():
    model = _randomize_norms(MobileNetV2())
    exported = check_batch(model, (2, 3, 64, 64), **DEEP)
    depthwise = [n for n in exported.graph if n.op_type == "Conv" and n.attributes["group"].value > 1]
    assert len(depthwise) == 17


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(scale))))
        return scale * x


class V3Block(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, se, act, stride):
        super().__init__()
        layers = [_conv_bn(cin, expanded, 1, act=act)] if expanded != cin else []
        layers.append(_conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se:
            layers.append(SqueezeExcitation(expanded, _divisible(expanded // 4)))
        layers.append(_conv_bn(expanded, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetV3Small(nn.Module):
    """torchvision's MobileNetV3-Small configuration (k, exp, c, SE, act, s), half width."""

    RE, HS = nn.ReLU, nn.Hardswish
    CONFIG = [(3, 16, 16, True, RE, 2), (3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1),
              (5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1),
              (5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1), (5, 288, 96, True, HS, 2),
              (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)]

    def __init__(self, width: float = 0.5, num_classes: int = 10):
        super().__init__()
        cin = _divisible(16 * width)
        layers = [_conv_bn(3, cin, 3, 2, act=nn.Hardswish)]
        for k, exp, c, se, act, s in self.CONFIG:
            cout = _divisible(c * width)
            layers.append(V3Block(cin, k, _divisible(exp * width), cout, se, act, s))
            cin = cout
        layers.append(_conv_bn(cin, 6 * cin, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(6 * cin, 128), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_mobilenet_v3_small():
    model = _randomize_norms(MobileNetV3Small())
    exported = check_batch(model, (2, 3, 64, 64), **DEEP)
    kinds = {n.op_type for n in exported.graph}
    assert {"HardSwish", "HardSigmoid", "GlobalAveragePool"} <= kinds or "Sigmoid" in kinds


# -- super-resolution (PyTorch ONNX tutorial) ------------------------------------------------

def test_super_resolution_full_size():
    """The tutorial's export: input 1x1x224x224 -> output 1x1x672x672 (batch: next test)."""
    torch.manual_seed(0)
    exported = check_export(SuperResolutionNet().eval(), (torch.randn(1, 1, 224, 224),), **DEEP)
    assert list(exported.graph.outputs[0].shape) == [1, 1, 672, 672]
    assert [n.op_type for n in exported.graph][-1] == "DepthToSpace"


def test_super_resolution_dynamic_batch_and_image_size():
    torch.manual_seed(0)
    model = SuperResolutionNet().eval()
    check_export(model, (torch.randn(2, 1, 16, 20),), input_names=["x"],
                 dynamic_axes={"x": {0: "batch", 2: "h", 3: "w"}},
                 other_inputs=[(torch.randn(1, 1, 9, 7),), (torch.randn(3, 1, 24, 12),)], **DEEP)
