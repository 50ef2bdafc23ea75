"""Reference PyTorch models the demo (and the benchmarks and tests) use. Needs torch."""

from __future__ import annotations

from torch import nn

__all__ = ["SuperResolutionNet"]


class SuperResolutionNet(nn.Module):
    """The super-resolution network of the PyTorch ONNX tutorial: four convolutions with
    ReLUs, then a pixel shuffle by ``upscale_factor`` (1x1x224x224 -> 1x1x672x672)."""

    def __init__(self, upscale_factor: int = 3) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, upscale_factor**2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))
