"""The five benchmark models, built in code with random weights from a fixed seed.

Each builder returns a :class:`Spec`: the module (in eval mode), a function making example
inputs at a batch size, the input/output names and the dynamic axes (batch only). Nothing
is downloaded: torchvision is not used and BERT is built from a ``BertConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ferry.cli.models import SuperResolutionNet

SEED = 0


@dataclass
class Spec:
    name: str
    title: str
    module: nn.Module
    make_inputs: Callable[[int], tuple[torch.Tensor, ...]]  # batch -> torch inputs
    input_names: list[str]
    output_names: list[str]

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {n: {0: "batch"} for n in [*self.input_names, *self.output_names]}

    def feeds(self, batch: int) -> dict[str, object]:
        """numpy feeds for the ONNX runtimes (same data for every engine)."""
        return {n: t.numpy() for n, t in zip(self.input_names, self.make_inputs(batch), strict=True)}


# -- MLP 784-512-512-10 ---------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 512)
        self.fc3 = nn.Linear(512, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# -- the super-resolution net of the PyTorch ONNX tutorial -----------------------------------
# -- ResNet-50 (bottleneck, [3, 4, 6, 3], stride on the 3x3 conv as in torchvision) ----------
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class ResNet50(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._layer(64, layers[0])
        self.layer2 = self._layer(128, layers[1], stride=2)
        self.layer3 = self._layer(256, layers[2], stride=2)
        self.layer4 = self._layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * 4, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                # random (but sane) statistics so that BatchNorm is not an identity
                m.weight.data.uniform_(0.5, 1.0)
                m.bias.data.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                m.bn3.weight.data.mul_(0.2)  # keep activations bounded through 16 residual blocks

    def _layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- BERT-base encoder -----------------------------------------------------------------------
class BertEncoder(nn.Module):
    """``transformers.BertModel`` from a config; returns (last_hidden_state, pooler_output)."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512, hidden_act="gelu",
        )
        self.bert = BertModel(config)

    def forward(self, input_ids, attention_mask):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, out.pooler_output


# -- 2-layer LSTM --------------------------------------------------------------------------
class LSTMNet(nn.Module):
    def __init__(self, input_size: int = 512, hidden: int = 512) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


BERT_SEQ = 128
LSTM_SEQ = 64


def _randn(*shape: int) -> Callable[[int], tuple[torch.Tensor, ...]]:
    def make(batch: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(SEED + batch)
        return (torch.randn(batch, *shape, generator=g),)

    return make


def _bert_inputs(batch: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(SEED + batch)
    ids = torch.randint(0, 30522, (batch, BERT_SEQ), generator=g)
    mask = torch.ones(batch, BERT_SEQ, dtype=torch.int64)
    mask[:, BERT_SEQ - 16 :] = 0  # some padding, so the mask is not trivially all-ones
    return ids, mask


def build(name: str) -> Spec:
    """Build model ``name`` (mlp, sr, resnet50, bert, lstm) with seeded random weights."""
    torch.manual_seed(SEED)
    if name == "mlp":
        spec = Spec("mlp", "MLP 784-512-512-10", MLP(), _randn(784), ["x"], ["logits"])
    elif name == "sr":
        spec = Spec("sr", "super-resolution 1x224x224", SuperResolutionNet(), _randn(1, 224, 224),
                    ["x"], ["y"])
    elif name == "resnet50":
        spec = Spec("resnet50", "ResNet-50 3x224x224", ResNet50(), _randn(3, 224, 224),
                    ["x"], ["logits"])
    elif name == "bert":
        spec = Spec("bert", f"BERT-base seq {BERT_SEQ}", BertEncoder(), _bert_inputs,
                    ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])
    elif name == "lstm":
        spec = Spec("lstm", f"LSTM 2x512 seq {LSTM_SEQ}", LSTMNet(), _randn(LSTM_SEQ, 512),
                    ["x"], ["y"])
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    spec.module.eval()
    return spec


MODELS = ("mlp", "sr", "resnet50", "bert", "lstm")
