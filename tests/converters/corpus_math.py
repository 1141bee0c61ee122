"""Corpus entries for the math families: math_unary, elementwise (the named binary functions) and
activation."""
from __future__ import annotations

import torch

from .corpus import aten, x

F, I, L, B = torch.float32, torch.int32, torch.int64, torch.bool
_unit = aten.tanh.default  # maps normal values into (-1, 1) for asin/acos/atanh

CORPUS = [
    # math_unary
    # tan is ill-conditioned near ±pi/2, where rounding the input to half moves it far
    (lambda t: aten.tan.default(_unit(t)), (x(2, 3),)), (lambda t: aten.asin.default(_unit(t)), (x(2, 3),)),
    (lambda t: aten.acos.default(_unit(t)), (x(2, 3),)), (aten.atan.default, (x(2, 3, dtype=I),)),
    (aten.sinh.default, (x(2, 3),)), (aten.cosh.default, (x(2, 3),)), (aten.asinh.default, (x(2, 3),)),
    (lambda t: aten.acosh.default(t + 1), (x(2, 3, positive=True),)),
    (lambda t: aten.atanh.default(_unit(t)), (x(2, 3),)),
    (lambda t: aten.expm1.default(t * 1e-3), (x(2, 3),)), (lambda t: aten.log1p.default(t * 1e-4), (x(2, 3, positive=True),)),
    (aten.log2.default, (x(2, 3, positive=True),)), (aten.log10.default, (x(2, 3, positive=True),)),
    (aten.exp2.default, (x(2, 3),)), (lambda t: aten.trunc.default(t * 3), (x(2, 3),)),
    (lambda t: aten.round.default(t * 3), (x(2, 3),)), (lambda t: aten.round.decimals(t, decimals=1), (x(2, 3),)),
    (lambda t: aten.frac.default(t * 3), (x(2, 3),)), (aten.sign.default, (x(2, 3, dtype=I),)),
    (aten.sgn.default, (x(2, 3),)), (lambda t: aten.isnan.default(aten.log.default(t)), (x(2, 3),)),
    (lambda t: aten.isinf.default(t / 0), (x(2, 3),)), (lambda t: aten.isfinite.default(aten.log.default(t)), (x(2, 3),)),
    (lambda t: aten.isposinf.default(t / 0), (x(2, 3),)), (lambda t: aten.isneginf.default(t / 0), (x(2, 3),)),
    (aten.logical_not.default, (x(2, 3, dtype=I),)), (aten.bitwise_not.default, (x(2, 3, dtype=I),)),
    (lambda t: aten.nan_to_num.default(aten.log.default(t) / 0, 1.0, 100.0, -100.0), (x(2, 3),)),
    (aten.square.default, (x(2, 3),)), (lambda t: aten.logit.default(t, 0.25), (x(2, 3),)),
    # elementwise: the named binary functions
    (aten.atan2.default, (x(2, 3), x(3))), (aten.hypot.default, (x(2, 3), x(3))),
    (aten.copysign.Tensor, (x(2, 3), x(3))), (aten.copysign.Scalar, (x(2, 3), -2.0)),
    (aten.remainder.Tensor, (x(2, 3), x(3, positive=True))), (aten.remainder.Scalar, (x(2, 3, dtype=I), -4)),
    (aten.remainder.Scalar_Tensor, (3.5, x(2, 3, positive=True))),
    (aten.fmod.Tensor, (x(2, 3, dtype=I), x(3, dtype=I, positive=True))), (aten.fmod.Scalar, (x(2, 3), 0.75)),
    (aten.bitwise_and.Tensor, (x(2, 3, dtype=B), x(3, dtype=B))), (aten.bitwise_and.Scalar, (x(2, 3, dtype=B), True)),
    (aten.bitwise_and.Scalar_Tensor, (True, x(2, 3, dtype=B))),
    (aten.bitwise_or.Tensor, (x(2, 3, dtype=B), x(3, dtype=B))), (aten.bitwise_or.Scalar, (x(2, 3, dtype=B), False)),
    (aten.bitwise_or.Scalar_Tensor, (False, x(2, 3, dtype=B))),
    (aten.bitwise_xor.Tensor, (x(2, 3, dtype=B), x(3, dtype=B))), (aten.bitwise_xor.Scalar, (x(2, 3, dtype=B), True)),
    (aten.bitwise_xor.Scalar_Tensor, (True, x(2, 3, dtype=B))),
    (aten.mul.Tensor, (x(2, 3, dtype=B), x(3, dtype=B))),
    (aten.logical_and.default, (x(2, 3), x(3, dtype=I))), (aten.logical_or.default, (x(2, 3, dtype=B), x(3))),
    (aten.logical_xor.default, (x(2, 3, dtype=I), x(3, dtype=B))),
    (aten.__lshift__.Scalar, (x(2, 3, dtype=I), 3)), (aten.__rshift__.Scalar, (x(2, 3, dtype=I), 2)),
    (aten.bitwise_left_shift.Tensor_Scalar, (x(2, 3, dtype=L), 5)),
    (aten.bitwise_right_shift.Tensor_Scalar, (x(2, 3, dtype=L), 1)),
    (aten.clamp.Tensor, (x(2, 3), x(3), x(2, 3))), (aten.clamp_min.Tensor, (x(2, 3, dtype=I), x(3, dtype=I))),
    (aten.clamp_max.Tensor, (x(2, 3), x(2, 1))),
    (aten.where.ScalarSelf, (x(2, 3, dtype=B), 1.5, x(3))), (aten.where.ScalarOther, (x(2, 3, dtype=B), x(3, dtype=I), -2)),
    (aten.where.Scalar, (x(2, 3, dtype=B), 1.0, -1.0)),
    (aten.lerp.Scalar, (x(2, 3), x(3), 0.75)), (lambda a, b, w: aten.lerp.Tensor(a, b, aten.sigmoid.default(w)), (x(2, 3), x(3), x(2, 3))),
    (lambda a, b, c: aten.addcmul.default(a, b, c, value=0.5), (x(2, 3), x(3), x(2, 3))),
    (lambda a, b, c: aten.addcdiv.default(a, b, c, value=2), (x(2, 3), x(3), x(2, 3, positive=True))),
    (lambda a, b: aten.rsub.Tensor(a, b, alpha=2), (x(2, 3), x(3))), (aten.rsub.Scalar, (x(2, 3, dtype=I), 5)),
    (aten.xlogy.Tensor, (x(2, 3), x(3, positive=True))), (aten.xlogy.Scalar_Self, (2.0, x(2, 3, positive=True))),
    (aten.xlogy.Scalar_Other, (x(2, 3), 3.0)),
    (lambda a, b: aten.fmax.default(aten.log.default(a), b), (x(2, 3), x(3))),
    (lambda a, b: aten.fmin.default(a, aten.log.default(b)), (x(2, 3), x(3))),
    (aten.true_divide.Tensor, (x(2, 3), x(3, positive=True))),
    # activation (composed)
    (aten.hardsigmoid.default, (x(2, 3),)), (aten.hardswish.default, (x(2, 3),)), (aten.mish.default, (x(2, 3),)),
    (aten.selu.default, (x(2, 3),)), (lambda t: aten.celu.default(t, 0.5), (x(2, 3),)),
    (aten.glu.default, (x(2, 4),)), (lambda t: aten.log_sigmoid_forward.default(t * 30)[0], (x(2, 3),)),
    (aten._prelu_kernel.default, (x(2, 3, 2), x(3, 1))), (aten.prelu.default, (x(2, 3, 2), x(3))),
    (lambda t, n: aten.rrelu_with_noise.default(t, n, 0.1, 0.3, False), (x(2, 3), x(2, 3))),
    (lambda t, n: aten.rrelu_with_noise_functional.default(t, n, 0.1, 0.3, False)[0], (x(2, 3), x(2, 3))),
    (lambda t: aten.softshrink.default(t, 0.3), (x(2, 3),)), (lambda t: aten.hardshrink.default(t, 0.3), (x(2, 3),)),
    (lambda t: aten.threshold.default(t, 0.1, -2.0), (x(2, 3),)),
]
