"""Dynamic image sizes: symbolic batch, height and width through convolution, pooling,
transposed convolution and interpolation, in engines, every call compared with eager.

``torch.compile(dynamic=True)`` makes every dim symbolic, and dynamo's automatic dynamic shapes
do the same to a CNN called at a second image size; both must keep their engines."""
from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from plugtrt.runtime import EngineModule

from .test_dynamic import check, compiled


class SmallCNN(nn.Module):
    """Convolution, batch norm, max pool, a strided convolution, adaptive average pooling and
    a linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class UNet(nn.Module):
    """Two levels down (a strided convolution, a max pool), up again through a transposed
    convolution and ``interpolate``, with skip concatenations."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.down1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.down3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.merge1 = nn.Conv2d(32, 16, 3, padding=1)
        self.merge2 = nn.Conv2d(24, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(a)
        u = F.relu(self.merge1(torch.cat([self.up(self.down3(b)), b], 1)))
        if self.mode == "to-size":
            u = F.interpolate(u, size=a.shape[-2:], mode="bilinear", align_corners=False)
        else:
            u = F.interpolate(u, scale_factor=2, mode=self.mode)
        return self.out(F.relu(self.merge2(torch.cat([u, a], 1))))


def _all_in_engines(result, engines: int | None = None) -> None:
    for report in result.reports:
        assert report.engines and report.pytorch_ops == [] and report.fallbacks == [], report.summary()
        assert engines is None or len(report.engines) == engines, report.summary()


def test_cnn_with_dynamic_true_builds_at_most_four_times_with_every_op_in_engines():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    result, run = compiled(model, dynamic=True)
    sizes = [(2, 32, 32), (3, 40, 48), (4, 64, 56), (5, 33, 47), (2, 96, 64), (6, 50, 50),
             (3, 72, 40), (7, 36, 60)]
    for batch, height, width in sizes:
        check(run, model, torch.randn(batch, 3, height, width), tol=1e-3)
    assert sum(result.builds) <= 4
    _all_in_engines(result)


@pytest.fixture
def engine_calls(monkeypatch):
    """How many engines ran during each call of the model."""
    counts = collections.Counter()
    forward = EngineModule.forward

    def counted(self, *inputs):
        counts["engines"] += 1
        return forward(self, *inputs)

    monkeypatch.setattr(EngineModule, "forward", counted)
    return counts


def test_default_compile_keeps_its_engines_after_an_automatic_dynamic_recompile(engine_calls):
    """A second image size makes dynamo recompile with symbolic sizes; that graph, which then
    serves the first size too, must run in engines."""
    torch.manual_seed(0)
    model = SmallCNN().eval()
    result, run = compiled(model)
    per_call = []
    for height, width in ((32, 32), (48, 40), (64, 72), (32, 32)):
        engine_calls.clear()
        check(run, model, torch.randn(2, 3, height, width), tol=1e-3)
        per_call.append(engine_calls["engines"])
    assert per_call == [1, 1, 1, 1]
    assert len(result.graphs) == 2  # the static first graph and the symbolic one
    _all_in_engines(result)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_torchvision_model_with_dynamic_true_runs_whole_in_engines(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    result, run = compiled(model, dynamic=True)
    for batch, height, width in ((2, 64, 64), (3, 96, 80), (4, 72, 120)):
        check(run, model, torch.randn(batch, 3, height, width), tol=1e-3)
    _all_in_engines(result)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "to-size"])
def test_unet_with_dynamic_true_runs_whole_in_engines(mode):
    torch.manual_seed(0)
    model = UNet(mode).eval()
    result, run = compiled(model, dynamic=True)
    for batch, height, width in ((2, 32, 32), (3, 48, 40), (4, 40, 72)):
        check(run, model, torch.randn(batch, 3, height, width), tol=1e-3)
    assert sum(result.builds) <= 3
    # one engine: the sizes upsampling reads from a convolution's output are rebuilt from the
    # input's dims (lowering/shared_sizes.py) instead of cutting the engine in two
    _all_in_engines(result, engines=1)
