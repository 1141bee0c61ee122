"""Runs one program through plugtrt and decides whether its answer is right.

The bar: every output has eager's dtype and shape, integers and booleans are equal, and floats
are within what rounding can explain. "What rounding can explain" is measured, not guessed: the
program also runs eagerly in float64 (the truth) and with every float result rounded to the
engine's precision (an emulation of the engine's arithmetic). A float output may differ from
eager by the dtype's tolerance (``plugtrt.testing.tolerance``) plus a few times the error both of
those eager runs show against the truth at that element; an ill-conditioned step (cancellation,
``exp`` of a rounded value) shows up in that error, so it widens the bound exactly there, while a
wrong converter (a bad broadcast, axis or dtype) is far outside it.

An explicit cast to a float dtype (``x.to(torch.float16)``) rounds in eager only: the float64
and emulating runs skip it, so its rounding counts as eager's own error. plugtrt rounds such a
cast inside the engine as eager does (``test_fuzz.py``'s
``test_an_explicit_float16_round_trip_rounds_at_float32_precision``).

Autocast (a region of the forward, or an ambient one around the call): eager's call and the
compiled one run under the same autocast, and so do the float64 and emulating runs, except that
the truth runs without it (autocast never casts float64) and the emulation keeps eager's dtypes
(rounding each value to the precision, since autocast picks kernels by dtype). Where autocast's
type is coarser than ``precision``, the tolerance is that type's: the tolerance follows the
coarsest float type the outputs' arithmetic ran at. After calls under an ambient autocast, a
plain call is held to eager's plain answer at ``precision`` alone.

A program with dynamic dims is compared at every size it is called with, each against its own
eager run; one with inference-mode weights runs every call, and its weight change, under
``inference_mode``.

Examples are rejected (the caller's ``hypothesis.assume``), never compared, only where eager
itself leaves the range where the comparison means anything: a float result beyond half its dtype's largest
finite value (float16: past 32768, where the engine's differently ordered arithmetic may reach
inf while eager does not; intermediates of fused ops count too), attention whose scores are
too large for the precision to keep softmax's weights, a non-finite value, or an integer beyond 2**30 (int32 wraps; with
``truncate_long_and_double`` int64 runs as int32).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.utils._pytree as pytree
from torch.fx.experimental.symbolic_shapes import ConstraintViolationError
from torch.overrides import TorchFunctionMode

import plugtrt
from plugtrt.testing import BackendRun, run_through_backend, tolerance

from .ops import FLOATS
from .programs import Program, build_module, describe, runs_at

NOISE_FACTOR = 4.0
"""How many times the rounding error that eager shows may the engine show."""
INT_LIMIT = 2**30
_FLOAT_LIMIT = {torch.float16: 2.0**15, torch.bfloat16: 1e37, torch.float32: 1e37,
                torch.float64: float("inf")}


def _hidden_intermediate(func: Callable, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The largest intermediate that plugtrt computes, at the engine's precision, inside an op
    that eager runs fused (in float32 inside, whatever its dtype): attention's scores, and the
    sum of squares of a variance (var, std, group norm through the experimental decompositions;
    :mod:`plugtrt.precision` keeps those sums in float32, held by test_fuzz.py's
    ``test_float16_group_norm_statistics_do_not_overflow``)."""
    F = torch.nn.functional
    if func is F.scaled_dot_product_attention:
        q, k = args[0], args[1]
        return (q @ k.transpose(-2, -1)) * (kwargs.get("scale") or q.shape[-1] ** -0.5)
    if func in (torch.Tensor.var, torch.Tensor.std):
        x, dims = args[0], kwargs["dim"]
    elif func is F.group_norm:
        x, dims = args[0].reshape(args[0].shape[0], args[1], -1), -1
    else:
        return None
    centred = x - x.mean(dims, keepdim=True)
    return (centred * centred).sum(dims)


def _is_float_dtype(x: object) -> bool:
    return isinstance(x, torch.dtype) and x.is_floating_point


class _Rounding(TorchFunctionMode):
    """Rounds every float result to ``dtype`` (None: leaves it) and records whether any result
    left the comparable range. ``keep_dtype``: rounds the values but keeps each result's dtype
    (a round trip through ``dtype``), and leaves explicit casts alone: under autocast, dtypes
    decide what runs (its promoting ops refuse a float16 operand under a bfloat16 autocast)."""

    def __init__(self, dtype: torch.dtype | None, coarsest: torch.dtype | None = None,
                 keep_dtype: bool = False):
        super().__init__()
        self.dtype = dtype
        self.coarsest = coarsest or dtype
        """The coarsest float type the scores may be rounded to (an autocast's, if coarser)."""
        self.keep_dtype = keep_dtype
        self.out_of_range: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if self.dtype is not None and func is torch.Tensor.to and not self.keep_dtype:
            # An explicit float cast is not repeated here: the truth is the exact value, and an
            # engine keeps every float at ``precision`` (see the module docstring).
            args = tuple(self.dtype if _is_float_dtype(a) else a for a in args)
            if _is_float_dtype(kwargs.get("dtype")):
                kwargs["dtype"] = self.dtype
        hidden = _hidden_intermediate(func, args, kwargs)
        if hidden is not None:
            self._visit(func, hidden)
        if func is torch.nn.functional.scaled_dot_product_attention and self.dtype is not None:
            if not self.keep_dtype:
                return self._math_attention(*args, **kwargs)
            q = args[0]
            autocast = torch.is_autocast_enabled("cpu") and q.dtype != torch.float64
            dtype = torch.get_autocast_dtype("cpu") if autocast else q.dtype  # eager's result's
            return self._math_attention(*(a.to(self.dtype) for a in args[:3]), *args[3:], **kwargs).to(dtype)
        out = func(*args, **kwargs)
        return pytree.tree_map_only(torch.Tensor, lambda t: self._visit(func, t), out)

    def _math_attention(self, q, k, v, is_causal=False, scale=None):
        """Attention as plugtrt computes it (decomposed; the scores and the weighted sum rounded
        to the precision, the softmax in float32), not as eager's fused kernel, which keeps
        the scores in float32: at bfloat16, scores in the thousands round by several units."""
        scores = (q @ k.transpose(-2, -1)).to(self.dtype) * (scale or q.shape[-1] ** -0.5)
        # softmax turns an absolute error in a score into a relative one in its weights: where
        # rounding the scores to the precision moves them by more than 0.1, the weights (and the
        # answer) depend on how the rounding fell, so there is nothing to compare.
        if scores.abs().max() * torch.finfo(self.coarsest).eps > 0.1:
            self.out_of_range.append(f"attention scores up to {scores.abs().max()} in {self.coarsest}")
        if is_causal:
            keep = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(self.dtype)
        return self._visit(torch.nn.functional.scaled_dot_product_attention, (weights @ v).to(self.dtype))

    def _visit(self, func: Callable, t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point:
            if self.dtype is not None and self.keep_dtype:
                rounded = t.to(self.dtype)
                self._check(func, rounded)
                return rounded.to(t.dtype)
            if self.dtype is not None:
                t = t.to(self.dtype)
        return self._check(func, t)

    def _check(self, func: Callable, t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point:
            limit = _FLOAT_LIMIT[t.dtype]
            out = t.numel() and (not torch.isfinite(t).all() or t.abs().max() > limit)
        else:
            out = t.dtype != torch.bool and t.numel() and t.abs().max() > INT_LIMIT
        if out:
            self.out_of_range.append(f"{getattr(func, '__name__', func)} gave {t.abs().max()} in {t.dtype}")
        return t


def _eager(module: torch.nn.Module, inputs: list[torch.Tensor], dtype: torch.dtype | None,
           context: Callable[[], Any] = torch.no_grad, coarsest: torch.dtype | None = None,
           autocast: bool = False):
    """Eager outputs with every float value (weights, inputs, results) in ``dtype``, called in
    ``context`` (grad mode and ambient autocast, as the compiled call runs).

    ``autocast`` (the program uses it): the emulation rounds every value to ``dtype`` but keeps
    eager's dtypes, so that autocast rounds it as it rounds eager. The float64 truth runs
    without autocast, the ambient one and the model's own regions (``autocast_regions``):
    autocast never casts float64, so that is the same truth, but its promoting ops (``cat``)
    raise "Unexpected floating ScalarType in at::autocast::prioritize" on float64 operands."""
    keep_dtype = autocast and dtype not in (None, torch.float64)
    if keep_dtype:
        module = copy.deepcopy(module)
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                if t.dtype.is_floating_point:
                    t.copy_(t.to(dtype))
        inputs = [x.to(dtype).to(x.dtype) if x.dtype.is_floating_point else x for x in inputs]
    elif dtype is not None:
        module = copy.deepcopy(module).to(dtype)
        inputs = [x.to(dtype) if x.dtype.is_floating_point else x for x in inputs]
    if dtype == torch.float64:
        module.autocast_regions = False
        context = torch.no_grad
    mode = _Rounding(dtype, coarsest, keep_dtype)
    with context(), torch.no_grad(), mode:
        out = module(*inputs)
    return out, mode.out_of_range


@attrs.frozen
class Reference:
    """Eager's answer and the two runs that bound its rounding error."""

    truth: tuple[torch.Tensor, ...]
    emulated: tuple[torch.Tensor, ...]
    problems: list[str]


def reference(module: torch.nn.Module, inputs: list[torch.Tensor], precision: torch.dtype,
              context: Callable[[], Any] = torch.no_grad, coarsest: torch.dtype | None = None,
              autocast: bool = False) -> Reference:
    """The truth (float64) and the emulation (every float rounded to ``precision``) of eager's
    call in ``context``; ``coarsest`` is the coarsest float type of the program's arithmetic,
    ``autocast`` whether it uses autocast (see :func:`_eager`)."""
    _, plain = _eager(module, inputs, None, context, coarsest)
    truth, exact = _eager(module, inputs, torch.float64, context, coarsest)
    emulated, rounded = _eager(module, inputs, precision, context, coarsest, autocast)
    return Reference(truth=truth, emulated=emulated, problems=plain + exact + rounded)


def mismatches(got: Any, want: Any, ref: Reference, precision: torch.dtype) -> list[str]:
    """Why ``got`` is not eager's ``want`` (empty: it is)."""
    if len(got) != len(want):
        return [f"{len(got)} outputs, eager gave {len(want)}"]
    problems = []
    for i, (g, w, t, e) in enumerate(zip(got, want, ref.truth, ref.emulated)):
        if g.dtype != w.dtype or g.shape != w.shape:
            problems.append(f"output {i}: {g.dtype} {tuple(g.shape)}, eager {w.dtype} {tuple(w.shape)}")
            continue
        if w.dtype not in FLOATS:
            if not torch.equal(g, w):
                bad = (g != w).nonzero()[:3].tolist()
                problems.append(f"output {i} ({w.dtype}) differs at {bad}: {g[tuple(zip(*bad))].tolist()}"
                                f" vs eager {w[tuple(zip(*bad))].tolist()}")
            continue
        g64, w64, t64, e64 = (x.double() for x in (g, w, t, e))
        rtol, atol = tolerance(w.dtype, precision)
        noise = (e64 - t64).abs() + (w64 - t64).abs()
        allowed = atol + rtol * w64.abs() + NOISE_FACTOR * noise
        error = (g64 - w64).abs()
        error = torch.where(torch.isnan(error), torch.where(torch.isnan(g64) == torch.isnan(w64), 0.0,
                                                               float("inf")), error)
        if (error > allowed).any():
            k = int(torch.argmax(error - allowed))
            idx = tuple(int(j) for j in torch.unravel_index(torch.tensor(k), w.shape)) if w.dim() else ()
            problems.append(
                f"output {i} ({w.dtype}, precision {precision}): {int((error > allowed).sum())} of "
                f"{w.numel()} elements off; worst at {list(idx)}: plugtrt {g64[idx].item():.6g}, eager "
                f"{w64[idx].item():.6g}, float64 {t64[idx].item():.6g}, emulated {e64[idx].item():.6g}, "
                f"allowed error {allowed[idx].item():.3g}")
    return problems


def _failure(program: Program, what: str, problems: list[str], run: BackendRun | None = None,
             then: str = "") -> str:
    engines = "" if run is None else (f"\n{run.engines} engine(s); ops left in PyTorch: {run.pytorch_ops}; "
                                      f"fallbacks: {run.fallbacks}")
    return (f"{what}:\n  " + "\n  ".join(problems) + engines
            + f"\nprogram:\n{describe(program)}\n\nreproducer:\n\n{program.reproducer()}{then}")


_NO_OP_STEPS = {"reshape", "permute", "transpose", "slice", "unsqueeze", "expand", "squeeze", "chunk"}
"""Steps that may lower to nothing at all (an identity permute, a full slice)."""


def _must_build_an_engine(program: Program) -> bool:
    """Every op has a converter, none is forced to PyTorch, a block of one op is enough, no
    float64 is about, and some step the outputs depend on is more than a view that may lower to
    nothing: then a run without an engine passed by falling back.

    float64 converts only under ``truncate_long_and_double``, and then not by every converter,
    so a program with float64 values is not held to it (the norm converters take it:
    test_fuzz.py's ``test_float64_norms_convert_under_truncate_long_and_double``).
    Programs with dynamic dims are not held to it: converters may decline symbolic sizes
    (convolution and pooling over symbolic spatial dims, today), which the long run counts."""
    if program.dynamic is not None:
        return False
    options = program.option_dict
    float64 = any(v.dtype == torch.float64 for v in program.values)
    return (program.all_converted and not options.get("torch_executed_ops") and not float64
            and options["min_block_size"] == 1 and not all(s.op in _NO_OP_STEPS for s in program.live_steps))


@attrs.define
class Outcome:
    """What one program did, for the long run's summary."""

    engines: int = 0
    pytorch_ops: list[str] = attrs.Factory(list)
    fallbacks: list[str] = attrs.Factory(list)
    weights_checked: bool = False
    fresh_inputs_checked: bool = False
    rejected: str | None = None
    """Why the program was not compared (eager left the comparable range), else None."""
    dynamic_graphs: int = 0
    """Graphs of the first call compiled with symbolic sizes."""
    marks_refused: bool = False
    """dynamo refused the drawn ``mark_dynamic`` bounds (the program guards the dim: a slice, a
    fixed reshape): compiled with ``dynamic=True`` instead."""
    sizes_compared: int = 0
    """Later calls at other sizes of the dynamic dims, compared with eager."""
    size_compiles: int = 0
    """plugtrt compilations those calls caused (a size beyond the bounds or the profile)."""
    size_engines: int = 0
    """Engines built (not loaded from the cache) for them."""
    leak_checked: bool = False
    """A plain call after the autocast calls was compared with eager's plain float32."""


def _compiled_reports(since: int) -> list:
    new = plugtrt.compile_count() - since
    return plugtrt.compile_reports()[-new:] if new else []


class _Caller:
    """Calls the compiled module and eager the same way, and compares them."""

    def __init__(self, program: Program, module: torch.nn.Module, precision: torch.dtype):
        self.program, self.module, self.precision = program, module, precision

    def reference(self, inputs: list[torch.Tensor], ambient: bool = True) -> Reference:
        autocast = self.program.autocast
        return reference(self.module, inputs, self.precision, lambda: self.program.calling(ambient),
                         self.coarsest(ambient), autocast.region is not None or autocast.ambient is not None)

    def coarsest(self, ambient: bool = True) -> torch.dtype:
        return self.program.coarsest_float(self.precision, ambient)

    def again(self, run: BackendRun, inputs: list[torch.Tensor], ambient: bool = True
              ) -> tuple[list[str], bool]:
        """Call the compiled module again and compare with eager: (problems, whether compared).
        Not compared where the new values leave the comparable range."""
        ref = self.reference(inputs, ambient)
        if ref.problems:
            return [], False
        with self.program.calling(ambient):
            want = pytree.tree_leaves(self.module(*copy.deepcopy(inputs)))
            got = pytree.tree_leaves(run.compiled(*inputs))
        return mismatches(got, want, ref, self.coarsest(ambient)), True


def _compile(program: Program, module: torch.nn.Module, inputs: list[torch.Tensor]
             ) -> tuple[Program, BackendRun, bool]:
    """The first call, with the program's dynamic dims marked (or ``dynamic=True``); where dynamo
    refuses the marks, compiled with ``dynamic=True`` instead: (the program as compiled, run,
    whether the marks were refused)."""
    dynamic = program.dynamic
    if dynamic is not None and dynamic.bounds is not None:
        # Marks go on copies: a marked tensor called again (after the weights change) would carry
        # its marks into every frame dynamo compiles for it, where refused marks raise again.
        marked = [x.clone() for x in inputs]
        program.mark_dynamic(marked)
        try:
            with program.calling():
                return program, run_through_backend(module, marked, program.option_dict), False
        except ConstraintViolationError:
            # dynamo's own contract: mark_dynamic asserts that the code leaves the dim free in
            # those bounds, and a slice or a fixed reshape guards it. Any backend raises this.
            program = attrs.evolve(program, dynamic=attrs.evolve(dynamic, bounds=None))
            inputs = program.make_inputs()
            refused = True
    else:
        refused = False
    with program.calling():
        run = run_through_backend(module, inputs, program.option_dict, dynamic=True if dynamic else None)
    return program, run, refused


def check_program(program: Program) -> Outcome:
    """Compile ``program`` through plugtrt, compare with eager; call again with new values,
    plainly after autocast calls, at the other sizes of its dynamic dims, and after changing its
    weights in place; raise AssertionError with a reproducer on a wrong answer. A program outside
    the comparable range is not compiled: its outcome says why (callers ``assume`` it away)."""
    module = build_module(program)
    inputs = program.make_inputs()
    precision = program.option_dict["precision"]
    caller = _Caller(program, module, precision)
    ref = caller.reference(inputs)
    if ref.problems:  # outside the comparable range: see the module docstring
        return Outcome(rejected="; ".join(ref.problems))

    program, run, refused = _compile(program, module, inputs)
    caller.program = program
    got, want = pytree.tree_leaves(run.outputs), pytree.tree_leaves(run.expected)
    problems = mismatches(got, want, ref, caller.coarsest())
    assert not problems, _failure(program, "plugtrt's answer differs from eager", problems, run)
    if _must_build_an_engine(program):
        assert run.engines >= 1, _failure(program, "every op has a converter, yet no engine was built",
                                          [f"ops left in PyTorch: {run.pytorch_ops}"], run)
    outcome = Outcome(engines=run.engines, pytorch_ops=run.pytorch_ops, fallbacks=run.fallbacks,
                      dynamic_graphs=sum(r.dynamic for r in run.reports), marks_refused=refused)

    # Same shapes, new values: the engines must read their inputs, not what the first call saw.
    fresh = program.make_inputs(NEW_VALUES)
    problems, outcome.fresh_inputs_checked = caller.again(run, fresh)
    assert not problems, _failure(program, "on a second call with new input values, plugtrt's answer "
                                  "differs from eager", problems, then=_again(program, NEW_VALUES))

    plain = attrs.evolve(program, autocast=attrs.evolve(program.autocast, ambient=None))
    if program.autocast.ambient is not None and runs_at(plain, program.shapes()):
        # The autocast of earlier calls must not leak into a plain one: eager's float32 answer.
        # (Not where eager refuses the plain call: a layer built for autocast's dtype.)
        problems, outcome.leak_checked = caller.again(run, fresh, ambient=False)
        assert not problems, _failure(program, "a plain call after calls under autocast differs from "
                                      "eager's plain call (autocast leaked?)", problems,
                                      then=_again(program, NEW_VALUES, ambient=False))

    if program.dynamic is not None:
        # Other sizes of the dynamic dims, inside and beyond the bounds or the first profile.
        since = plugtrt.compile_count()
        for sizes in program.dynamic.calls:
            problems, compared = caller.again(run, program.make_inputs(0, sizes))
            assert not problems, _failure(program, f"at sizes {sizes} of the dynamic dims "
                                          f"{list(program.dynamic.dims)}, plugtrt's answer differs from "
                                          "eager (see the reproducer's loop)", problems)
            outcome.sizes_compared += compared
        reports = _compiled_reports(since)
        outcome.size_compiles = len(reports)
        outcome.size_engines = sum(not e.cached for r in reports for e in r.engines)

    params = [p for p in module.parameters() if p.dtype.is_floating_point]
    if params:
        # A frozen weight changed in place must reach the next call: a stale engine would
        # still answer with the old weights. -0.5 is exact in every float dtype and flips signs.
        # Inference tensors can only be written under inference_mode (and bump no version).
        with torch.inference_mode() if program.inference_weights else torch.no_grad():
            for p in params:
                p.mul_(-0.5)
        problems, outcome.weights_checked = caller.again(run, inputs)
        assert not problems, _failure(
            program, f"after `p.mul_(-0.5)` on every weight (under {_grad_source(program)}), plugtrt's "
            "answer differs from eager (a stale engine?)", problems, then=_new_weights(program))
    return outcome


NEW_VALUES = 7919
"""Seed offset of the second call's inputs."""


def _grad_source(program: Program) -> str:
    return "torch.inference_mode()" if program.inference_weights else "torch.no_grad()"


def _calling_source(program: Program, ambient: bool = True) -> str:
    grad = _grad_source(program)
    if ambient and program.autocast.ambient is not None:
        return f'{grad}, torch.autocast("cpu", dtype={program.autocast.ambient})'
    return grad


def _again(program: Program, seed: int, ambient: bool = True) -> str:
    return f"""
inputs = [make_tensor(shape, dtype, seed + {seed}, scale, transposed)
          for shape, dtype, seed, scale, transposed in SPECS]
with {_calling_source(program, ambient)}:
    print(run.compiled(*inputs), model(*inputs), sep="\\n")
"""


def _new_weights(program: Program) -> str:
    return f"""
inputs = [make_tensor(*spec) for spec in SPECS]
with {_grad_source(program)}:
    for p in model.parameters():
        p.mul_(-0.5)
with {_calling_source(program)}:
    print(run.compiled(*inputs), model(*inputs), sep="\\n")
"""
