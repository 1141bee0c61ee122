"""Random programs over the op pool: the hypothesis strategy, the module that runs one, and the
reproducer that prints one as a standalone script.

A program is data (inputs, steps, outputs, settings) so that hypothesis can shrink it; the
module interprets it step by step. Each step's expression is compiled from the same text the
reproducer prints (``tests/fuzz/ops.py``), so what a failure prints is what ran.
"""
from __future__ import annotations

import functools
import inspect
import textwrap
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from .ops import ATEN_PACKETS, FAMILIES, FLOATS, INTS, OPS, Value, broadcastable

INPUT_DTYPES = [*FLOATS, *INTS, torch.bool]
PRECISIONS = [torch.float32, torch.float16, torch.bfloat16]


def make_tensor(shape: tuple[int, ...], dtype: torch.dtype, seed: int, scale: float,
                transposed: bool = False) -> torch.Tensor:
    """Random values of magnitude ``scale``; floats are multiples of 1/4 rounded to bfloat16, so
    every float dtype (and every engine precision) holds them exactly: casting an input is never
    where eager and the engine part ways. ``transposed``: laid out in reverse dim order, so a
    tensor of rank >= 2 is not contiguous."""
    if transposed:
        dims = tuple(reversed(range(len(shape))))
        return make_tensor(tuple(shape[d] for d in dims), dtype, seed, scale).permute(dims)
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        x = torch.round(torch.randn(shape, generator=g) * scale * 4) / 4
        return x.to(torch.bfloat16).to(dtype)
    return torch.randint(-int(scale), int(scale) + 1, shape, generator=g).to(dtype)


def init_module(module: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    """Deterministic weights of magnitude ``scale`` (bfloat16-exact, like the inputs); a batch
    norm also gets running statistics, with a positive variance."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(module.named_parameters()) + sorted(module.named_buffers()):
            if not t.dtype.is_floating_point:
                continue  # num_batches_tracked
            x = torch.randn(t.shape, generator=g) * scale
            if name == "running_var":
                x = x.abs() + 0.5
            t.copy_(x.to(torch.bfloat16).to(t.dtype))
    return module.eval()


@attrs.frozen
class Input:
    shape: tuple[int, ...]
    dtype: torch.dtype
    scale: float
    transposed: bool = False


@attrs.frozen
class Step:
    op: str
    reads: tuple[int, ...]
    args: tuple[tuple[str, Any], ...]
    """The template's keyword arguments, as sorted pairs (hashable, printable)."""

    def expression(self, names: list[str], layer: str) -> str:
        kwargs = {k: v for k, v in self.args}
        kwargs["layer"] = layer
        return OPS[self.op].template.format(*names, **kwargs)

    def module_source(self, operands: list[Value]) -> str | None:
        make = OPS[self.op].module
        return None if make is None else make(operands, dict(self.args))


@attrs.frozen
class Program:
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    outputs: tuple[int, ...]
    options: tuple[tuple[str, Any], ...]
    seed: int
    values: tuple[Value, ...] = attrs.field(eq=False, repr=False)
    """Shape, dtype and exactness of every value (inputs first), as generation saw them."""

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def live_steps(self) -> list[Step]:
        """The steps the outputs depend on (the rest is dead code, which tracing drops)."""
        n, live, todo = len(self.inputs), set(), list(self.outputs)
        while todo:
            i = todo.pop()
            if i >= n and i not in live:
                live.add(i)
                todo.extend(self.steps[i - n].reads)
        return [self.steps[i - n] for i in sorted(live)]

    @property
    def all_converted(self) -> bool:
        return all(OPS[s.op].converted for s in self.steps)

    def make_inputs(self, offset: int = 0) -> list[torch.Tensor]:
        """The inputs; another ``offset`` gives other values of the same shapes and dtypes."""
        return [make_tensor(*spec[:2], spec[2] + offset, *spec[3:]) for spec in self.input_specs]

    @property
    def input_specs(self) -> list[tuple]:
        """``make_tensor``'s arguments per input."""
        return [(i.shape, i.dtype, self.seed + k, i.scale, i.transposed) for k, i in enumerate(self.inputs)]

    def layer_name(self, k: int) -> str:
        return f"self.m{len(self.inputs) + k}"

    def reproducer(self) -> str:
        """A standalone script that rebuilds this program and runs it through plugtrt."""
        n = len(self.inputs)
        names = [f"v{i}" for i in range(len(self.values))]
        init, body = [], []
        for k, step in enumerate(self.steps):
            source = step.module_source([self.values[r] for r in step.reads])
            if source is not None:
                scale = dict(step.args)["scale"]
                init.append(f"{self.layer_name(k)} = init_module({source}, seed={self.seed + n + k}, "
                            f"scale={scale})")
            expression = step.expression([names[r] for r in step.reads], self.layer_name(k))
            body.append(f"{names[n + k]} = {expression}")
        outputs = ", ".join(names[i] for i in self.outputs)
        specs = ",\n    ".join(f"({', '.join(map(str, spec))})" for spec in self.input_specs)
        return "\n".join([
            "import torch",
            "import torch.nn.functional as F",
            "from plugtrt.testing import run_through_backend",
            "",
            inspect.getsource(make_tensor),
            inspect.getsource(init_module),
            "class Model(torch.nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            *(f"        {line}" for line in init),
            "",
            f"    def forward(self, {', '.join(names[:n])}):",
            *(f"        {line}" for line in body),
            f"        return ({outputs},)",
            "",
            "",
            "# make_tensor's arguments: shape, dtype, seed, scale, transposed",
            f"SPECS = [\n    {specs},\n]",
            "inputs = [make_tensor(*spec) for spec in SPECS]",
            f"options = {self.option_dict!r}",
            "model = Model()",
            "run = run_through_backend(model, inputs, options)",
            "print(run.outputs, run.expected, sep='\\n')",
            "",
        ])


@functools.cache
def _compile_step(expression: str, arity: int):
    """``lambda self, v0, v1: <expression>`` (one code object per distinct expression)."""
    params = ", ".join(f"_{i}" for i in range(arity))
    return eval(f"lambda self, {params}: {expression}", {"torch": torch, "F": F})  # noqa: S307


class ProgramModule(torch.nn.Module):
    """Runs a program: layers built as the reproducer builds them, steps evaluated in order."""

    def __init__(self, program: Program):
        super().__init__()
        self.program = program
        n = len(program.inputs)
        self._steps = []
        for k, step in enumerate(program.steps):
            operands = [program.values[r] for r in step.reads]
            source = step.module_source(operands)
            if source is not None:
                layer = eval(source, {"torch": torch})  # noqa: S307 - the pool's own layer source
                scale = dict(step.args)["scale"]
                self.add_module(f"m{n + k}", init_module(layer, program.seed + n + k, scale))
            names = [f"_{i}" for i in range(len(step.reads))]
            fn = _compile_step(step.expression(names, f"self.m{n + k}"), len(names))
            self._steps.append((fn, step.reads))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = list(inputs)
        for fn, reads in self._steps:
            values.append(fn(self, *(values[r] for r in reads)))
        return tuple(values[i] for i in self.program.outputs)


# -- the strategy ---------------------------------------------------------------------------
@st.composite
def _input_shapes(draw, count: int) -> list[tuple[int, ...]]:
    """``count`` shapes that broadcast together: variants of one base shape that drop leading
    dims (down to a 0-d tensor) or set dims to 1. Rank 4 is common so that Conv2d and
    BatchNorm2d get inputs."""
    rank = draw(st.sampled_from([4, 1, 2, 3]))
    base = draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank).map(tuple))
    shapes = [base]
    for _ in range(count - 1):
        keep = draw(st.integers(0, len(base)))  # 0: a 0-d tensor
        shapes.append(tuple(1 if draw(st.booleans()) else d for d in base[len(base) - keep:]))
    return shapes


def _meta(v: Value) -> torch.Tensor:
    return torch.empty(v.shape, dtype=v.dtype, device="meta")


def _result(step: Step, operands: list[Value]) -> Value | None:
    """The step's result, inferred by running it on meta tensors; None where torch rejects it
    (the generator then drops the step: the pool's predicates are coarse on purpose)."""
    names = [f"_{i}" for i in range(len(operands))]
    layer = None
    source = step.module_source(operands)
    if source is not None:
        layer = eval(source.replace("dtype=", "device='meta', dtype="), {"torch": torch})  # noqa: S307
    holder = torch.nn.Module()
    holder.layer = layer
    try:
        out = _compile_step(step.expression(names, "self.layer"), len(names))(holder, *map(_meta, operands))
    except (RuntimeError, IndexError, ValueError, TypeError):
        return None
    if out.numel() == 0:
        return None  # an empty slice: nothing to compare
    op = OPS[step.op]
    exact = out.dtype not in FLOATS or (op.preserves_exact and all(
        o.dtype == torch.bool or (o.dtype in FLOATS and o.exact) for o in operands))
    return Value(tuple(out.shape), out.dtype, exact)


@st.composite
def _step(draw, values: list[Value]) -> tuple[Step, Value] | None:
    usable = {name: [i for i, v in enumerate(values) if op.first(v)] for name, op in OPS.items()}
    families = {f: [n for n in names if usable[n]] for f, names in FAMILIES.items()}
    family = draw(st.sampled_from([f for f, names in families.items() if names]))
    name = draw(st.sampled_from(families[family]))
    op = OPS[name]
    reads = [draw(st.sampled_from(usable[name]))]
    first = values[reads[0]]
    for _ in range(op.arity - 1):
        fits = [i for i, v in enumerate(values) if op.second(first, v)
                and all(broadcastable(values[r], v) for r in reads[1:])]
        if not fits:
            return None
        reads.append(draw(st.sampled_from(fits)))
    operands = [values[r] for r in reads]
    args = tuple(sorted(op.args(draw, operands).items()))
    step = Step(op=name, reads=tuple(reads), args=args)
    result = _result(step, operands)
    return None if result is None else (step, result)


@st.composite
def _options(draw, steps: list[Step]) -> tuple[tuple[str, Any], ...]:
    used = sorted({p for s in steps for p in OPS[s.op].aten if p in ATEN_PACKETS})
    executed = draw(st.lists(st.sampled_from(used), unique=True, max_size=2)) if used and draw(
        st.integers(0, 3)) == 0 else []
    options = {
        "precision": draw(st.sampled_from(PRECISIONS)),
        "min_block_size": draw(st.sampled_from([1, 1, 2, 3])),
        "partitioner": draw(st.sampled_from(["fast", "global"])),
        "truncate_long_and_double": draw(st.booleans()),
        "enable_experimental_decompositions": draw(st.booleans()),
    }
    if executed:
        options["torch_executed_ops"] = sorted(executed)
    return tuple(sorted(options.items()))


@st.composite
def programs(draw, max_steps: int = 8) -> Program:
    """A random program: 1-3 broadcast-compatible inputs, 1-``max_steps`` steps, the last value
    and maybe one more as outputs, and random backend settings."""
    count = draw(st.integers(1, 3))
    inputs = [Input(shape, draw(st.sampled_from(INPUT_DTYPES)), draw(st.sampled_from([1.0, 30.0, 1000.0])),
                    transposed=len(shape) >= 2 and draw(st.integers(0, 3)) == 0)
              for shape in draw(_input_shapes(count))]
    values = [Value(i.shape, i.dtype, True) for i in inputs]
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, max_steps))):
        drawn = draw(_step(values))
        if drawn is not None:
            steps.append(drawn[0])
            values.append(drawn[1])
    if not steps:  # every drawn step was dropped: a one-op program still tests something
        target = torch.float16 if inputs[0].dtype == torch.float32 else torch.float32
        steps.append(Step(op="cast", reads=(0,), args=(("dtype", str(target)),)))
        values.append(_result(steps[0], values[:1]))
    outputs = [len(values) - 1]
    extra = draw(st.integers(len(inputs), len(values) - 1))
    if extra not in outputs and draw(st.booleans()):
        outputs.append(extra)
    return Program(inputs=tuple(inputs), steps=tuple(steps), outputs=tuple(outputs),
                   options=draw(_options(steps)), seed=draw(st.integers(0, 2**20)), values=tuple(values))


def describe(program: Program) -> str:
    """One line per step, for logs: ``v3 = torch.relu(v1)  # float16 (2, 3) exact``."""
    n = len(program.inputs)
    names = [f"v{i}" for i in range(len(program.values))]
    lines = [f"{names[k]}: input {i.dtype} {i.shape} scale {i.scale}{' transposed' if i.transposed else ''}"
             for k, i in enumerate(program.inputs)]
    for k, step in enumerate(program.steps):
        v = program.values[n + k]
        expression = step.expression([names[r] for r in step.reads], program.layer_name(k))
        lines.append(f"{names[n + k]} = {expression}"
                     f"  # {v.dtype} {v.shape}{' exact' if v.exact else ''}")
    return textwrap.indent("\n".join(lines), "  ")
