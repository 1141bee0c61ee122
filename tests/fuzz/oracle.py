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
and emulating runs skip it, so its rounding counts as eager's own error. Inside an engine every
float is at ``precision``, so plugtrt computes such a cast at ``precision`` too; whether it
should honour it is an open question, held as a strict xfail in ``test_fuzz.py``.

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
from torch.overrides import TorchFunctionMode

from plugtrt.testing import BackendRun, run_through_backend, tolerance

from .ops import FLOATS
from .programs import Program, ProgramModule, describe

NOISE_FACTOR = 4.0
"""How many times the rounding error that eager shows may the engine show."""
INT_LIMIT = 2**30
_FLOAT_LIMIT = {torch.float16: 2.0**15, torch.bfloat16: 1e37, torch.float32: 1e37,
                torch.float64: float("inf")}


def _hidden_intermediate(func: Callable, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The largest intermediate that plugtrt computes, at the engine's precision, inside an op
    that eager runs fused (in float32 inside, whatever its dtype): attention's scores, and the
    sum of squares of a variance (var, std, group norm through the experimental decompositions;
    at float16 that overflows where eager does not: a strict xfail in test_fuzz.py)."""
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
    left the comparable range."""

    def __init__(self, dtype: torch.dtype | None):
        super().__init__()
        self.dtype = dtype
        self.out_of_range: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if self.dtype is not None and func is torch.Tensor.to:
            # An explicit float cast is not repeated here: the truth is the exact value, and an
            # engine keeps every float at ``precision`` (see the module docstring).
            args = tuple(self.dtype if _is_float_dtype(a) else a for a in args)
            if _is_float_dtype(kwargs.get("dtype")):
                kwargs["dtype"] = self.dtype
        hidden = _hidden_intermediate(func, args, kwargs)
        if hidden is not None:
            self._visit(func, hidden)
        if func is torch.nn.functional.scaled_dot_product_attention and self.dtype is not None:
            return self._math_attention(*args, **kwargs)
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
        if scores.abs().max() * torch.finfo(self.dtype).eps > 0.1:
            self.out_of_range.append(f"attention scores up to {scores.abs().max()} in {self.dtype}")
        if is_causal:
            keep = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(self.dtype)
        return self._visit(torch.nn.functional.scaled_dot_product_attention, (weights @ v).to(self.dtype))

    def _visit(self, func: Callable, t: torch.Tensor) -> torch.Tensor:
        if t.dtype.is_floating_point:
            if self.dtype is not None:
                t = t.to(self.dtype)
            limit = _FLOAT_LIMIT[t.dtype]
            out = t.numel() and (not torch.isfinite(t).all() or t.abs().max() > limit)
        else:
            out = t.dtype != torch.bool and t.numel() and t.abs().max() > INT_LIMIT
        if out:
            self.out_of_range.append(f"{getattr(func, '__name__', func)} gave {t.abs().max()} in {t.dtype}")
        return t


def _eager(module: torch.nn.Module, inputs: list[torch.Tensor], dtype: torch.dtype | None):
    """Eager outputs with every float value (weights, inputs, results) in ``dtype``."""
    if dtype is not None:
        module = copy.deepcopy(module).to(dtype)
        inputs = [x.to(dtype) if x.dtype.is_floating_point else x for x in inputs]
    mode = _Rounding(dtype)
    with torch.no_grad(), mode:
        out = module(*inputs)
    return out, mode.out_of_range


@attrs.frozen
class Reference:
    """Eager's answer and the two runs that bound its rounding error."""

    truth: tuple[torch.Tensor, ...]
    emulated: tuple[torch.Tensor, ...]
    problems: list[str]


def reference(module: torch.nn.Module, inputs: list[torch.Tensor], precision: torch.dtype) -> Reference:
    _, plain = _eager(module, inputs, None)
    truth, exact = _eager(module, inputs, torch.float64)
    emulated, rounded = _eager(module, inputs, precision)
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

    float64 converts only under ``truncate_long_and_double``, and then not everywhere: the
    layer and batch norm converters decline it (test_fuzz.py holds that as a strict xfail)."""
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


def check_program(program: Program) -> Outcome:
    """Compile ``program`` through plugtrt, compare with eager, change its weights in place,
    compare again; raise AssertionError with a reproducer on a wrong answer. A program outside
    the comparable range is not compiled: its outcome says why (callers ``assume`` it away)."""
    module = ProgramModule(program).eval()
    inputs = program.make_inputs()
    options = program.option_dict
    precision = options["precision"]
    ref = reference(module, inputs, precision)
    if ref.problems:  # outside the comparable range: see the module docstring
        return Outcome(rejected="; ".join(ref.problems))

    run = run_through_backend(module, inputs, options)
    got, want = pytree.tree_leaves(run.outputs), pytree.tree_leaves(run.expected)
    problems = mismatches(got, want, ref, precision)
    assert not problems, _failure(program, "plugtrt's answer differs from eager", problems, run)
    if _must_build_an_engine(program):
        assert run.engines >= 1, _failure(program, "every op has a converter, yet no engine was built",
                                          [f"ops left in PyTorch: {run.pytorch_ops}"], run)
    outcome = Outcome(engines=run.engines, pytorch_ops=run.pytorch_ops, fallbacks=run.fallbacks)

    # Same shapes, new values: the engines must read their inputs, not what the first call saw.
    fresh = program.make_inputs(NEW_VALUES)
    problems, compared = _call_again(module, run, fresh, precision)
    assert not problems, _failure(program, "on a second call with new input values, plugtrt's answer "
                                  "differs from eager", problems, then=_SECOND_CALL.format(seed=NEW_VALUES))
    outcome.fresh_inputs_checked = compared

    params = [p for p in module.parameters() if p.dtype.is_floating_point]
    if params:
        # A frozen weight changed in place must reach the next call: a stale engine would
        # still answer with the old weights. -0.5 is exact in every float dtype and flips signs.
        with torch.no_grad():
            for p in params:
                p.mul_(-0.5)
        problems, outcome.weights_checked = _call_again(module, run, inputs, precision)
        assert not problems, _failure(
            program, "after `with torch.no_grad(): p.mul_(-0.5)` on every weight, plugtrt's answer "
            "differs from eager (a stale engine?)", problems, then=_NEW_WEIGHTS)
    return outcome


NEW_VALUES = 7919
"""Seed offset of the second call's inputs."""
_SECOND_CALL = """
inputs = [make_tensor(shape, dtype, seed + {seed}, scale, transposed)
          for shape, dtype, seed, scale, transposed in SPECS]
with torch.no_grad():
    print(run.compiled(*inputs), model(*inputs), sep="\\n")
"""
_NEW_WEIGHTS = """
with torch.no_grad():
    for p in model.parameters():
        p.mul_(-0.5)
    print(run.compiled(*inputs), model(*inputs), sep="\\n")
"""


def _call_again(module: torch.nn.Module, run: BackendRun, inputs: list[torch.Tensor],
                precision: torch.dtype) -> tuple[list[str], bool]:
    """Call the compiled module again and compare with eager: (problems, whether compared). Not
    compared where the new values leave the comparable range."""
    ref = reference(module, inputs, precision)
    if ref.problems:
        return [], False
    with torch.no_grad():
        want = pytree.tree_leaves(module(*copy.deepcopy(inputs)))
        got = pytree.tree_leaves(run.compiled(*inputs))
    return mismatches(got, want, ref, precision), True
