"""Corpus entries for interpolation, grid sampling and pooling (converters/resize.py,
converters/grid_sample.py, converters/pooling.py)."""
from __future__ import annotations

from .corpus import aten, x

CORPUS = [
    # resize: nearest, nearest-exact (sizes, or given scales that differ from out/in)
    (aten.upsample_nearest1d.default, (x(2, 3, 5), [10], 2.0)),
    (aten.upsample_nearest1d.vec, (x(2, 3, 5), None, [2.0])),
    (aten.upsample_nearest2d.default, (x(2, 3, 4, 5), [8, 7])),
    (aten.upsample_nearest2d.vec, (x(2, 3, 4, 5), [6, 10], None)),
    (aten.upsample_nearest3d.default, (x(2, 2, 2, 3, 4), [4, 6, 8], 2.0, 2.0, 2.0)),
    (aten.upsample_nearest3d.vec, (x(2, 2, 2, 3, 4), None, [2.0, 1.5, 2.0])),
    (aten._upsample_nearest_exact1d.default, (x(2, 3, 5), [7])),
    (aten._upsample_nearest_exact1d.vec, (x(2, 3, 5), [8], None)),
    (aten._upsample_nearest_exact2d.default, (x(2, 3, 4, 5), [7, 3])),
    (aten._upsample_nearest_exact2d.vec, (x(2, 3, 4, 5), None, [1.5, 2.0])),
    (aten._upsample_nearest_exact3d.default, (x(2, 2, 2, 3, 4), [3, 5, 2])),
    (aten._upsample_nearest_exact3d.vec, (x(2, 2, 2, 3, 4), [4, 4, 4], None)),
    # resize: linear family, both align_corners, given scale factors
    (aten.upsample_linear1d.default, (x(2, 3, 5), [8], False)),
    (aten.upsample_linear1d.vec, (x(2, 3, 5), [1], True, None)),
    (aten.upsample_bilinear2d.default, (x(2, 3, 4, 5), [6, 7], False, 1.6, 1.5)),
    (aten.upsample_bilinear2d.vec, (x(2, 3, 4, 5), [7, 3], True, None)),
    (aten.upsample_trilinear3d.default, (x(2, 2, 2, 3, 4), [3, 5, 7], True)),
    (aten.upsample_trilinear3d.vec, (x(2, 2, 2, 3, 4), None, False, [2.0, 1.5, 1.75])),
    (aten.upsample_bicubic2d.default, (x(2, 3, 4, 5), [7, 9], False)),
    (aten.upsample_bicubic2d.vec, (x(2, 3, 4, 5), [7, 1], True, None)),
    (aten._upsample_bilinear2d_aa.default, (x(2, 3, 4, 5), [6, 9], False)),
    (aten._upsample_bilinear2d_aa.vec, (x(2, 3, 4, 5), None, False, [1.5, 2.0])),
    # grid sampling (interpolation, padding, align_corners)
    (aten.grid_sampler_2d.default, (x(2, 3, 5, 6), x(2, 4, 7, 2), 0, 0, False)),
    # adaptive pooling to sizes that do not divide the input, 1d pooling
    (aten.adaptive_avg_pool1d.default, (x(2, 3, 9), [4])),
    (aten.adaptive_avg_pool2d.default, (x(2, 3, 7, 5), [3, 2])),
    (aten.adaptive_avg_pool3d.default, (x(2, 2, 5, 4, 6), [2, 3, 4])),
    (aten._adaptive_avg_pool2d.default, (x(2, 3, 7, 5), [3, 5])),
    (aten._adaptive_avg_pool3d.default, (x(2, 2, 5, 4, 6), [3, 2, 4])),
    (lambda t: aten.adaptive_max_pool1d.default(t, [4])[0], (x(2, 3, 9),)),
    (lambda t: aten.adaptive_max_pool2d.default(t, [3, 2])[0], (x(2, 3, 7, 5),)),
    (lambda t: aten.adaptive_max_pool3d.default(t, [2, 3, 4])[0], (x(2, 2, 5, 4, 6),)),
    (aten.avg_pool1d.default, (x(2, 3, 9), [3], [2], [1], False, False)),
    (aten.max_pool1d.default, (x(2, 3, 9), [3], [2], [1])),
    (lambda t: aten.max_pool1d_with_indices.default(t, [2])[0], (x(3, 8),)),
    (aten.avg_pool2d.default, (x(2, 3, 7, 6), [3, 3], [2, 2], [1, 1], False, True, 5)),
    (aten.avg_pool3d.default, (x(2, 2, 5, 4, 6), [2, 2, 2], [], [0, 0, 0], False, True, 3)),
]
