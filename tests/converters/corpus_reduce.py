"""Corpus entries for the reduction, scan and sorting converters.

Dim 0 of each first input is never the dim a converter needs static (reduced with indices,
sorted, scanned by the unrolled scan, the divisor of a variance), so every entry is a dynamic
case too. Sorting entries take float inputs: TensorRT's TopK does not document its order of
ties, and the corpus compares indices exactly.
"""
from __future__ import annotations

import math

import torch

from .corpus import aten, x

F, I, B = torch.float32, torch.int32, torch.bool
CORPUS = [
    # reduction: extremes, logical, counting
    (aten.prod.default, (x(3, 4),)), (lambda t: aten.prod.dim_int(t, 1, True), (x(3, 4, dtype=I),)),
    (aten.max.default, (x(3, 4),)), (aten.min.default, (x(3, 4, dtype=I),)),
    (lambda t: aten.max.dim(t, 1), (x(3, 5, dtype=I),)),
    (lambda t: aten.min.dim(t, -1, True), (x(3, 5),)),
    (lambda t: aten.argmax.default(t, 1), (x(3, 5),)),
    (lambda t: aten.argmin.default(t, 1, True), (x(3, 5, dtype=I),)),
    (lambda t: aten.aminmax.default(t, dim=1), (x(3, 4),)),
    (aten.any.default, (x(3, 4, dtype=B),)), (lambda t: aten.any.dim(t, 1), (x(3, 4, dtype=I),)),
    (lambda t: aten.any.dims(t, [1, 2], True), (x(2, 3, 4),)),
    (aten.all.default, (x(3, 4, dtype=I),)), (lambda t: aten.all.dim(t, 1, True), (x(3, 4, dtype=B),)),
    (lambda t: aten.all.dims(t, [-1]), (x(2, 3),)),
    (lambda t: aten.count_nonzero.default(t, 1), (x(3, 4, dtype=I),)),
    (lambda t: aten.count_nonzero.dim_IntList(t, [0, 1]), (x(3, 4),)),
    (lambda t: aten.logsumexp.default(t, [1]), (x(3, 4),)),
    # reduction: moments and norms
    (lambda t: aten.var.correction(t, [1]), (x(3, 4),)),
    (lambda t: aten.std.correction(t, [1], correction=0, keepdim=True), (x(3, 4),)),
    (lambda t: aten.var_mean.correction(t, [1, 2], correction=1), (x(2, 3, 4),)),
    (lambda t: aten.std_mean.correction(t, [-1], keepdim=True), (x(2, 5),)),
    (lambda t: aten.var.dim(t, [1], False), (x(3, 4),)), (lambda t: aten.std.dim(t, [1]), (x(3, 4),)),
    (lambda t: aten.linalg_vector_norm.default(t, 2, [1]), (x(3, 4),)),
    (lambda t: aten.linalg_vector_norm.default(t, math.inf, [1], True), (x(3, 4),)),
    (lambda t: aten.norm.Scalar(t, 3), (x(3, 4),)),
    (lambda t: aten.norm.ScalarOpt_dim(t, 1, [1]), (x(3, 4),)),
    # scans
    (lambda t: aten.cumsum.default(t, 1), (x(3, 4),)),
    (lambda t: aten.cumsum.default(t, 0, dtype=torch.int64), (x(3, 4, dtype=I),)),
    (lambda t: aten.cumprod.default(t, 1), (x(3, 5),)),
    (lambda t: aten.logcumsumexp.default(t, 1), (x(3, 6),)),
    (lambda t: aten.cummax.default(t, 1), (x(3, 5, dtype=I),)),
    (lambda t: aten.cummin.default(t, -1), (x(3, 5),)),
    # sorting
    (lambda t: aten.topk.default(t, 2, 1), (x(3, 5),)),
    (lambda t: aten.sort.default(t, 1, True), (x(3, 5),)),
    (lambda t: aten.sort.stable(t, stable=True, dim=1), (x(3, 5, dtype=I),)),
    (lambda t: aten.argsort.default(t, 1), (x(3, 5),)),
    (lambda t: aten.argsort.stable(t, stable=True, dim=-1, descending=True), (x(3, 5, dtype=I),)),
    (lambda t: aten.kthvalue.default(t, 2, 1), (x(3, 5),)),
]

# the indices of a dynamic reduced dim count positions with a LINSPACE fill, not a constant
DYNAMIC_EXTRA = [
    (lambda t: aten.max.dim(t, 0), (x(4, 3),)),
    (lambda t: aten.argmin.default(t, 0, True), (x(4, 3, dtype=I),)),
]
