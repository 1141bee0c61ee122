"""Corpus entries for creation, inference-form and random converters (see ``corpus.py``).

Sizes come from the first input's dim 0 where the op takes sizes, so each entry is also a
dynamic case. Ops whose values torch leaves undefined (``empty*``) or draws at random are
wrapped so the entry's result depends only on what the op guarantees (its shape, dtype and
support): ``ones_like(empty(...))``, ``rand(...) < 2``, ``randn(...) * 0``.
"""
from __future__ import annotations

import torch

from .corpus import aten, x

F, I, L = torch.float32, torch.int32, torch.int64


def _n(t):
    return t.shape[0]


def _corpus_lift_fresh_copy(t):
    return aten.lift_fresh_copy.default(t)


def _corpus_dropout(t):
    return aten.dropout.default(t, 0.5, False)


def _corpus_alpha_dropout(t):
    return aten.alpha_dropout.default(t, 0.5, False)


def _corpus_feature_dropout(t):
    return aten.feature_dropout.default(t, 0.5, False)


def _corpus_feature_alpha_dropout(t):
    return aten.feature_alpha_dropout.default(t, 0.5, False)


def _corpus_dropout_train(t):
    return aten.mul.Scalar(aten.dropout.default(t, 0.5, True), 0.0)


def _defined(t):
    """A tensor of undefined values (empty's) reduced to what is defined: its shape."""
    return aten.ones_like.default(t)


CORPUS = [
    # creation
    (lambda t: aten.add.Tensor(aten.zeros.default([_n(t), 3]), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.ones.default([_n(t), 3], dtype=I), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.full.default([_n(t), 3], 1.5), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(_defined(aten.empty.memory_format([_n(t), 3])), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(_defined(aten.empty_strided.default([_n(t), 3], [3, 1])), t), (x(2, 3),)),
    (lambda t: aten.zeros_like.default(t), (x(2, 3, dtype=I),)),
    (lambda t: aten.ones_like.default(t), (x(2, 3),)),
    (lambda t: aten.full_like.default(t, -2.5), (x(2, 3),)),
    (lambda t: _defined(aten.empty_like.default(t)), (x(2, 3),)),
    (lambda t: aten.new_zeros.default(t, [_n(t), 2]), (x(3, 4),)),
    (lambda t: aten.new_ones.default(t, [2, _n(t)]), (x(3, 4, dtype=I),)),
    (lambda t: aten.new_full.default(t, [_n(t), 2], 7.0), (x(3, 4),)),
    (lambda t: _defined(aten.new_empty.default(t, [_n(t), 2])), (x(3, 4),)),
    (lambda t: _defined(aten.new_empty_strided.default(t, [_n(t), 2], [2, 1])), (x(3, 4),)),
    (aten.zero.default, (x(3, 4),)), (aten.fill.Scalar, (x(3, 4), 0.25)),
    (aten.fill.Tensor, (x(3, 4), x(dtype=I))),
    (lambda t: aten.add.Tensor(aten.arange.default(_n(t)), t), (x(4),)),
    (lambda t: aten.add.Tensor(aten.arange.start(2, _n(t) + 2, dtype=I), t), (x(4, dtype=I),)),
    (lambda t: aten.add.Tensor(aten.arange.start_step(1, 2 * _n(t) + 1, 2, dtype=F), t), (x(4),)),
    (lambda t: aten.mul.Tensor(aten.linspace.default(-1.0, 1.0, 5), t), (x(5),)),
    (lambda t: aten.add.Tensor(aten.eye.default(_n(t)), aten.sum.dim_IntList(t, [1], True)), (x(3, 4),)),
    (lambda t: aten.add.Tensor(aten.eye.m(_n(t), 4), t), (x(3, 4),)),
    (aten.tril.default, (x(3, 4), 1)), (aten.triu.default, (x(2, 3, 4, dtype=I), -1)),
    (_corpus_lift_fresh_copy, (x(3),)),
    # inference forms
    (_corpus_dropout, (x(2, 3),)), (_corpus_alpha_dropout, (x(2, 3),)),
    (_corpus_feature_dropout, (x(2, 3, 4),)), (_corpus_feature_alpha_dropout, (x(2, 3, 4),)),
    (lambda t: aten.native_dropout.default(t, 0.5, False), (x(2, 3),)),
    # random: only what the distribution guarantees is compared
    (lambda t: aten.add.Tensor(aten.lt.Scalar(aten.rand.default([_n(t), 3]), 1.0), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.randn.default([_n(t), 3]), 0.0), t), (x(2, 3),)),
    (lambda t: aten.lt.Scalar(aten.rand_like.default(t), 1.0), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.randn_like.default(t), 0.0), t), (x(2, 3),)),
    (lambda t: aten.lt.Scalar(aten.randint.default(5, [_n(t), 3]), 5), (x(2, 3),)),
    (lambda t: aten.ge.Scalar(aten.randint.low(-3, 5, [_n(t), 3]), -3), (x(2, 3),)),
    (lambda t: aten.lt.Scalar(aten.randint_like.default(t, 4), 4), (x(2, 3),)),
    (lambda t: aten.ge.Scalar(aten.randint_like.low_dtype(t, 1, 4), 1), (x(2, 3, dtype=I),)),
    (lambda t: aten.le.Scalar(aten.bernoulli.default(aten.sigmoid.default(t)), 1.0), (x(2, 3),)),
    (lambda t: aten.le.Scalar(aten.bernoulli.p(t, 0.3), 1.0), (x(2, 3),)),
    (lambda t: aten.ge.Scalar(aten.uniform.default(t, -1.0, 2.0), -1.0), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.normal_functional.default(t, 1.0, 2.0), 0.0), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.normal.float_float(0.0, 1.0, [_n(t), 3]), 0.0), t), (x(2, 3),)),
    (lambda t: aten.mul.Scalar(aten.normal.Tensor_float(t, 2.0), 0.0), (x(2, 3),)),
    (lambda t: aten.mul.Scalar(aten.normal.float_Tensor(0.5, t), 0.0), (x(2, 3, positive=True),)),
    (lambda t: aten.mul.Scalar(aten.normal.Tensor_Tensor(t, t), 0.0), (x(2, 3, positive=True),)),
    (lambda t: aten.mul.Scalar(aten.native_dropout.default(t, 0.5, True)[0], 0.0), (x(2, 3),)),
    (_corpus_dropout_train, (x(2, 3),)),
]


def _w(t):
    """The last dim of ``t``: symbolic when the dynamic corpus makes the trailing dims so."""
    return t.shape[-1]


DYNAMIC_EXTRA = [
    (lambda t: aten.add.Tensor(aten.zeros.default([2, _w(t)]), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.full.default([2, _w(t)], 1.5), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(_defined(aten.empty.memory_format([2, _w(t)])), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(_defined(aten.empty_strided.default([2, _w(t)], [_w(t), 1])), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.eye.m(4, _w(t)), t), (x(4, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.randn.default([2, _w(t)]), 0.0), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.rand.default([2, _w(t)]), 0.0), t), (x(2, 3),)),
    (lambda t: aten.add.Tensor(aten.mul.Scalar(aten.normal.float_float(0.0, 1.0, [2, _w(t)]), 0.0), t),
     (x(2, 3),)),
]
