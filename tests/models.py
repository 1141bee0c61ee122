"""Small models the end-to-end tests share."""
from __future__ import annotations

import torch
from torch import nn


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                         nn.Linear(32, 4)).eval()


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 10), nn.Softmax(dim=-1)).eval()


def seeded_mlp(seed: int = 0, *, nudge: float = 0.0) -> nn.Module:
    """A small MLP with the weights of ``torch.manual_seed(seed)`` (the cache tests compile it in
    several processes); ``nudge`` is added to one weight, a change a cache key must see."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        model[0].weight[0, 0] += nudge
    return model


class Scaled(nn.Module):
    """A reshape and a scalar: node arguments that only a cache key's args cover."""

    def __init__(self, shape: tuple[int, ...], scale: float):
        super().__init__()
        self.shape, self.scale = shape, scale

    def forward(self, x):
        return torch.relu(x.reshape(self.shape) * self.scale)


class SeedModel(nn.Module):
    """The three-input model of the original backend's torch.compile guide."""

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_y = torch.relu(x * y + x)
        diff = x_y - z
        return torch.sigmoid(diff) * x, torch.tanh(z + x_y).mean(dim=-1)


class LastHiddenState(nn.Module):
    """A Hugging Face model returns a ModelOutput; tests and benchmarks compare its main tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids).last_hidden_state
