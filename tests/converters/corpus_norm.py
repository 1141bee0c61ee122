"""Corpus entries for the normalization_extra, attention and linalg families."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .corpus import aten, x

F, B = torch.float32, torch.bool
CORPUS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    # normalization_extra
    (lambda t, w, b: aten.native_group_norm.default(t, w, b, 2, 4, 6, 2, 1e-5)[0],
     (x(2, 4, 2, 3), x(4), x(4))),
    (lambda t: aten._native_batch_norm_legit.no_stats(t, None, None, True, 0.1, 1e-5)[0],
     (x(1, 6, 3, 3),)),
    (lambda t, w: aten.rms_norm.default(t, [4], w, None), (x(2, 3, 4), x(4))),
    (lambda t, w: aten._fused_rms_norm.default(t, [3, 4], w, 1e-6)[0], (x(2, 3, 4), x(3, 4))),
    (lambda t, w, b: aten.layer_norm.default(t, [4], w, b, 1e-5), (x(2, 3, 4), x(4), x(4))),
]

DYNAMIC_EXTRA: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (lambda t, w, b: aten.native_group_norm.default(t, w, b, t.shape[0], 4, 6, 2, 1e-5)[0],
     (x(2, 4, 2, 3), x(4), x(4))),
    (lambda t, w, b: aten._native_batch_norm_legit.no_stats(t, w, b, True, 0.1, 1e-5)[0],
     (x(3, 4, 3), x(4), x(4))),
]
