"""Corpus entries for advanced indexing and scattering (see corpus.py for the form)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .corpus import aten, x

L = torch.int64
CORPUS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    # advanced indexing: dim 0 of the data stays free, so these entries also run dynamic
    (lambda t, i, j: aten.index.Tensor(t, [None, i, j]), (x(3, 4, 5), x(2, dtype=L, below=4), x(2, dtype=L, below=5))),
    (lambda t, i: aten._unsafe_index.Tensor(t, [None, None, i]), (x(2, 3, 4), x(5, dtype=L, below=4))),
    (lambda t, i, v: aten.index_put.default(t, [None, i], v), (x(3, 4), x(1, dtype=L, below=4), x(1))),
    (lambda t, i, v: aten._unsafe_index_put.default(t, [i], v), (x(3, 4), x(1, dtype=L, below=3), x(4))),
    (lambda t: aten.diagonal.default(t, 1, 1, 2), (x(2, 3, 4),)),
    # scattering
    (lambda t, i, s: aten.scatter.src(t, 1, i, s), (x(3, 4), x(3, 1, dtype=L, below=4), x(3, 2))),
    (lambda t, i: aten.scatter.value(t, 1, i, 2.5), (x(3, 4), x(3, 1, dtype=L, below=4))),
    (lambda t, i, s: aten.scatter_add.default(t, 0, i, s), (x(3, 4), x(5, 4, dtype=L, below=3), x(5, 4))),
    (lambda t, i, s: aten.scatter_reduce.two(t, 0, i, s, "amax", include_self=False),
     (x(3, 4), x(5, 4, dtype=L, below=3), x(5, 4))),
    (lambda t, i, s: aten.scatter.reduce(t, 0, i, s, reduce="multiply"), (x(3, 4), x(5, 4, dtype=L, below=3), x(5, 4))),
    (lambda t, i: aten.scatter.value_reduce(t, 0, i, 2.0, reduce="add"), (x(3, 4), x(5, 4, dtype=L, below=3))),
    (lambda t, i, s: aten.index_add.default(t, 1, i, s, alpha=2), (x(3, 4), x(5, dtype=L, below=4), x(3, 5))),
    (lambda t, i, s: aten.index_copy.default(t, 1, i, s), (x(3, 4), x(1, dtype=L, below=4), x(3, 1))),
    (lambda t, i: aten.index_fill.int_Scalar(t, 1, i, -1.0), (x(3, 4), x(2, dtype=L, below=4))),
    (lambda t, i, v: aten.index_fill.int_Tensor(t, 1, i, v), (x(3, 4), x(2, dtype=L, below=4), x())),
    (lambda t, s: aten.slice_scatter.default(t, s, 1, 1, 3), (x(3, 4), x(3, 2))),
    (lambda t, s: aten.slice_scatter.default(t, s, 1, 0, 4, 2), (x(3, 4), x(3, 2))),
    (lambda t, s: aten.select_scatter.default(t, s, 1, -1), (x(3, 4), x(3))),
    (lambda t, s: aten.diagonal_scatter.default(t, s, 0, 1, 2), (x(2, 3, 3), x(2, 3))),
]
CORPUS += [
    (lambda w, i, o: aten._embedding_bag_forward_only.default(w, i, o, False, 1, False, None, False, 2)[0],
     (x(6, 3), x(5, dtype=L, below=6), x(2, dtype=L, below=1))),
    (lambda w, i, o, p: aten._embedding_bag.default(w, i, o, False, 0, False, p, True, -1)[0],
     (x(6, 3), x(5, dtype=L, below=6), x(3, dtype=L, below=1), x(5))),
]
CORPUS += [
    (aten.masked_scatter.default, (x(3, 4), x(4, dtype=torch.bool), x(12))),
]
