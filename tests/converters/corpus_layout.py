"""Corpus entries of the padding, layout and splitting converters (see corpus.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .corpus import aten, x

I, B = torch.int32, torch.bool

CORPUS: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    # padding
    (aten.constant_pad_nd.default, (x(2, 3, 4), [1, 2, -1, 1], 1.5)),
    (aten.reflection_pad1d.default, (x(2, 3, 5), [2, 1])),
    (aten.reflection_pad2d.default, (x(1, 2, 4, 5), [1, 2, 3, 0])),
    (aten.reflection_pad3d.default, (x(1, 2, 3, 4, 5), [1, 2, 2, 0, 1, 1])),
    (aten.replication_pad1d.default, (x(2, 3, 5, dtype=I), [3, 1])),
    (aten.replication_pad2d.default, (x(1, 2, 4, 5), [1, 2, 3, 0])),
    (aten.replication_pad3d.default, (x(1, 2, 3, 4, 5), [1, 2, 2, 0, 1, 1])),
    (aten._pad_circular.default, (x(1, 2, 4, 5), [2, 1, 1, 3])),
    (lambda t: aten.pad.default(t, [1, 2], "reflect"), (x(2, 3, 5),)),
    # layout
    (aten.roll.default, (x(2, 3, 4), [1, -2], [0, 2])), (aten.roll.default, (x(2, 3, 4, dtype=B), [5])),
    (aten.flip.default, (x(2, 3, 4), [0, -1])),
    (aten.repeat.default, (x(2, 3), [2, 1, 3])), (aten.tile.default, (x(2, 3, dtype=I), [2])),
    (lambda t: aten.repeat_interleave.self_int(t, 3, 1), (x(2, 3),)),
    (aten.unfold.default, (x(2, 7, 3), 1, 3, 2)), (aten.unfold_copy.default, (x(2, 7), -1, 2, 1)),
    (aten.pixel_shuffle.default, (x(1, 8, 2, 3), 2)), (aten.pixel_unshuffle.default, (x(1, 2, 4, 6), 2)),
    (lambda a, b: aten.stack.default([a, b], 1), (x(2, 3), x(2, 3, dtype=I))),
    (lambda t: aten.unbind.int(t, 1)[2], (x(2, 3, 4),)), (lambda t: aten.unbind_copy.int(t, -1)[0], (x(2, 3),)),
    (aten.diag_embed.default, (x(2, 3),)),
    (lambda t: aten.as_strided.default(t, [2, 3], [4, 1], 1), (x(3, 4),)),
    (lambda t: aten.as_strided_copy.default(t, [3, 2], [1, 3]), (x(3, 4),)),
    (lambda t: aten.alias.default(t) + 1, (x(3),)), (lambda t: aten.alias_copy.default(t) + 1, (x(3),)),
    # splitting and the functional view forms
    (lambda t: aten.chunk.default(t, 2, 1)[1], (x(2, 5),)),
    (lambda t: aten.unsafe_chunk.default(t, 3, 0)[2], (x(7, 2),)),
    (lambda t: aten.tensor_split.sections(t, 3, 1)[1], (x(2, 7),)),
    (lambda t: aten.tensor_split.indices(t, [1, 4], -1)[1], (x(2, 6),)),
    (lambda t: aten.unsafe_split.Tensor(t, 2, 1)[1], (x(3, 5),)),
    (lambda t: aten.unsafe_split_with_sizes.default(t, [1, 3], 1)[1], (x(3, 4),)),
    (lambda t: aten.split_copy.Tensor(t, 2, 0)[1], (x(5, 2),)),
    (lambda t: aten.split_with_sizes_copy.default(t, [2, 2], 1)[0], (x(3, 4),)),
    (aten.narrow.default, (x(3, 6), 1, -4, 3)), (aten.narrow_copy.default, (x(5, 2), 0, 1, 3)),
    (aten.slice_copy.Tensor, (x(6, 4), 0, 1, 5, 2)), (aten.select_copy.int, (x(3, 4), 1, -1)),
    (aten.movedim.int, (x(2, 3, 4), 0, -1)), (aten.movedim.intlist, (x(2, 3, 4), [0, 1], [2, 0])),
    (aten.swapaxes.default, (x(2, 3, 4), 0, 2)), (aten.swapdims.default, (x(2, 3, 4), -1, 1)),
    (aten.transpose_copy.int, (x(2, 3, 4), 1, 2)), (aten.permute_copy.default, (x(2, 3, 4), [1, 2, 0])),
    (aten.t_copy.default, (x(2, 3),)),
    (aten.view_copy.default, (x(2, 6), [3, 4])), (aten._reshape_copy.default, (x(2, 6), [4, -1])),
    (aten.unsqueeze_copy.default, (x(2, 3), 1)), (aten.squeeze_copy.default, (x(2, 1, 3),)),
    (aten.squeeze_copy.dim, (x(2, 1, 3), 1)), (aten.squeeze_copy.dims, (x(1, 2, 1), [0, 2])),
    (aten.expand_copy.default, (x(3, 1), [2, 3, 4])), (aten.expand_as.default, (x(3, 1), x(2, 3, 4))),
]

# Entries whose sizes vary with dim 0 of their first input, for converters whose entry pins it.
DYNAMIC_EXTRA: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
    (lambda t: aten.repeat.default(t, [2, 1, 3]), (x(2, 3),)),
    (lambda t: aten.tile.default(t, [3, 2]), (x(2, 3, dtype=I),)),
    (lambda t: aten.view_copy.default(t, [t.shape[0] * 2, -1]), (x(3, 4),)),
    (lambda t: aten._reshape_copy.default(t, [-1, 2]), (x(3, 4),)),
    (lambda t: aten.squeeze_copy.dims(t, [1, 3]), (x(3, 1, 2, 1),)),
    (lambda t: aten.expand_copy.default(t, [2, t.shape[0], 4]), (x(3, 1),)),
    (lambda a, b: aten.stack.default([a, b], -1), (x(2, 3), x(2, 3))),
    (lambda t: aten.split_copy.Tensor(t, 2, 1)[1], (x(3, 4),)),
    (lambda t: aten.pixel_shuffle.default(t, 2), (x(2, 8, 2, 3),)),
    (lambda t: aten.pixel_unshuffle.default(t, 2), (x(2, 2, 4, 6),)),
    (lambda t: aten._pad_circular.default(t, [2, 1, 1, 3]), (x(2, 2, 4, 5),)),
    (lambda t: aten.reflection_pad2d.default(t, [1, 2, 3, 0]), (x(2, 2, 4, 5),)),
    (lambda t: aten.reflection_pad3d.default(t, [1, 2, 2, 0, 1, 1]), (x(2, 2, 3, 4, 5),)),
    (lambda t: aten.replication_pad2d.default(t, [1, 2, 3, 0]), (x(2, 2, 4, 5),)),
    (lambda t: aten.replication_pad3d.default(t, [1, 2, 2, 0, 1, 1]), (x(2, 2, 3, 4, 5),)),
    # sizes computed from a symbolic last dim (the dynamic corpus's trailing mode)
    (lambda t: aten.view.default(t, [t.shape[0], t.shape[1] * t.shape[2]]), (x(2, 3, 4),)),
    (lambda t: aten.view_copy.default(t, [t.shape[0], -1]), (x(2, 3, 4),)),
    (lambda t: aten._unsafe_view.default(t, [t.shape[0], t.shape[1] * t.shape[2]]), (x(2, 3, 4),)),
    (lambda t: aten.reshape.default(t, [2, -1]), (x(2, 3, 4),)),
    (lambda t: aten._reshape_copy.default(t, [t.shape[0], -1]), (x(2, 3, 4),)),
    (lambda t: aten.expand_copy.default(t, [2, 3, t.shape[1]]), (x(3, 4),)),
    (lambda t: aten.split.Tensor(t, 2, 0)[1], (x(4, 5),)),
    (lambda t: aten.split_with_sizes.default(t, [1, 3], 0)[1], (x(4, 5),)),
    (lambda t: aten.narrow.default(t, 1, 1, t.shape[1] - 2), (x(2, 5),)),
]
