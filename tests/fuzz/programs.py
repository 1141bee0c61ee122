"""Random programs over the op pool: the hypothesis strategy, the module that runs one, and the
reproducer that prints one as a standalone script.

A program is data (inputs, steps, outputs, settings) so that hypothesis can shrink it; the
module interprets it step by step. Each step's expression is compiled from the same text the
reproducer prints (``tests/fuzz/ops.py``), so what a failure prints is what ran.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import textwrap
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch._subclasses.fake_tensor import FakeTensorMode

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
class Dynamic:
    """Sizes that change between calls. ``dims`` are dims of the broadcast shape, counted from the
    right (-1: the last); every input that has one (not broadcast, size 1) gets the call's size.

    ``bounds`` (one ``(min, max)`` per dim): the inputs' dims are marked with
    ``torch._dynamo.mark_dynamic(x, d, min=, max=)`` and compiled with ``dynamic=False``, so a call
    beyond the bounds compiles again; None: ``torch.compile(dynamic=True)``, every size symbolic.
    ``calls``: the later calls' sizes, one per dim, inside and beyond the bounds (beyond 16 where
    there are none, past plugtrt's first profile)."""

    dims: tuple[int, ...]
    bounds: tuple[tuple[int, int], ...] | None
    calls: tuple[tuple[int, ...], ...]


@attrs.frozen
class Autocast:
    """``torch.autocast("cpu", dtype=...)`` around steps ``region`` (start, stop) of the forward
    (``region_dtype``), and/or around the calls themselves (``ambient``: eager's call and the
    compiled one, compared under the same autocast; a plain call follows, which must not
    inherit it)."""

    region: tuple[int, int] | None = None
    region_dtype: torch.dtype | None = None
    ambient: torch.dtype | None = None


@attrs.frozen
class Program:
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    outputs: tuple[int, ...]
    options: tuple[tuple[str, Any], ...]
    seed: int
    values: tuple[Value, ...] = attrs.field(eq=False, repr=False)
    """Shape, dtype and exactness of every value (inputs first), as generation saw them."""
    dynamic: Dynamic | None = None
    autocast: Autocast = Autocast()
    inference_weights: str | None = None
    """``"created"``: the model is built under ``torch.inference_mode()``; ``"loaded"``: its
    state is loaded there with ``load_state_dict(..., assign=True)``. Either way its weights are
    inference tensors (no version counter), changed after compiling under ``inference_mode``,
    and every call runs under ``inference_mode``."""

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def live_indices(self) -> list[int]:
        """The indices of the steps the outputs depend on (the rest is dead code, which tracing drops)."""
        n, live, todo = len(self.inputs), set(), list(self.outputs)
        while todo:
            i = todo.pop()
            if i >= n and i not in live:
                live.add(i)
                todo.extend(self.steps[i - n].reads)
        return [i - n for i in sorted(live)]

    @property
    def live_steps(self) -> list[Step]:
        """The steps the outputs depend on."""
        return [self.steps[k] for k in self.live_indices]

    @property
    def all_converted(self) -> bool:
        return all(OPS[s.op].converted for s in self.steps)

    def make_inputs(self, offset: int = 0, sizes: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        """The inputs; another ``offset`` gives other values of the same shapes and dtypes, and
        ``sizes`` (one per dynamic dim) other shapes."""
        shapes = self.shapes(sizes)
        return [make_tensor(shape, spec[1], spec[2] + offset, *spec[3:])
                for shape, spec in zip(shapes, self.input_specs)]

    def shapes(self, sizes: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """The inputs' shapes with the dynamic dims at ``sizes`` (None: as drawn)."""
        shapes = [list(i.shape) for i in self.inputs]
        for dim, size in zip(self.dynamic.dims if sizes is not None else (), sizes or ()):
            for shape in shapes:
                if len(shape) >= -dim and shape[dim] != 1:
                    shape[dim] = size
        return [tuple(s) for s in shapes]

    def mark_dynamic(self, inputs: list[torch.Tensor]) -> None:
        """``torch._dynamo.mark_dynamic`` with the drawn bounds on every input's dynamic dims."""
        for x, shape in zip(inputs, self.shapes()):
            for dim, (low, high) in zip(self.dynamic.dims, self.dynamic.bounds):
                if len(shape) >= -dim and shape[dim] != 1:
                    torch._dynamo.mark_dynamic(x, len(shape) + dim, min=low, max=high)

    @property
    def has_weights(self) -> bool:
        return any(OPS[s.op].module is not None for s in self.steps)

    def calling(self, ambient: bool = True) -> contextlib.ExitStack:
        """The context a call runs in: ``inference_mode`` for inference weights, else
        ``no_grad``; and the ambient autocast, if any (``ambient=False``: the plain call)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode() if self.inference_weights else torch.no_grad())
        if ambient and self.autocast.ambient is not None:
            stack.enter_context(torch.autocast("cpu", dtype=self.autocast.ambient))
        return stack

    def coarsest_float(self, precision: torch.dtype, ambient: bool = True) -> torch.dtype:
        """The coarsest float type this program's arithmetic runs at: ``precision``, or an
        autocast's dtype where the outputs depend on a step inside its region or the call is
        made under it. Tolerances follow it, as they follow ``precision``."""
        dtypes = [precision]
        if ambient and self.autocast.ambient is not None:
            dtypes.append(self.autocast.ambient)
        region = self.autocast.region
        if region is not None and any(region[0] <= k < region[1] for k in self.live_indices):
            dtypes.append(self.autocast.region_dtype)
        return max(dtypes, key=lambda d: torch.finfo(d).eps)

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
        region = self.autocast.region or (-1, -1)
        for k, step in enumerate(self.steps):
            source = step.module_source([self.values[r] for r in step.reads])
            if source is not None:
                scale = dict(step.args)["scale"]
                init.append(f"{self.layer_name(k)} = init_module({source}, seed={self.seed + n + k}, "
                            f"scale={scale})")
            expression = step.expression([names[r] for r in step.reads], self.layer_name(k))
            if k == region[0]:
                body.append(f'with torch.autocast("cpu", dtype={self.autocast.region_dtype}):')
            body.append(f"{'    ' if region[0] <= k < region[1] else ''}{names[n + k]} = {expression}")
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
            *self._reproducer_calls(),
            "",
        ])

    def _reproducer_calls(self) -> list[str]:
        """The reproducer's tail: build the model, mark dims, call, call again at other sizes."""
        if self.inference_weights == "created":
            lines = ["with torch.inference_mode():  # inference tensors as weights", "    model = Model()"]
        elif self.inference_weights == "loaded":
            lines = ["model = Model()", "with torch.inference_mode():  # inference tensors as weights",
                     "    state = {k: v.clone() for k, v in model.state_dict().items()}",
                     "    model.load_state_dict(state, assign=True)"]
        else:
            lines = ["model = Model()"]
        dynamic = ""
        if self.dynamic is not None and self.dynamic.bounds is not None:
            for k, (x, shape) in enumerate(zip(self.inputs, self.shapes())):
                for dim, (low, high) in zip(self.dynamic.dims, self.dynamic.bounds):
                    if len(shape) >= -dim and shape[dim] != 1:
                        lines.append(f"torch._dynamo.mark_dynamic(inputs[{k}], {len(shape) + dim}, "
                                     f"min={low}, max={high})")
        elif self.dynamic is not None:
            dynamic = ", dynamic=True"
        grad = "torch.inference_mode()" if self.inference_weights else "torch.no_grad()"
        ambient = self.autocast.ambient
        call = f"run = run_through_backend(model, inputs, options{dynamic})"
        if ambient is not None:
            lines += [f'with {grad}, torch.autocast("cpu", dtype={ambient}):', f"    {call}"]
        elif self.inference_weights:
            lines += [f"with {grad}:", f"    {call}"]
        else:
            lines.append(call)
        lines.append("print(run.outputs, run.expected, sep='\\n')")
        if self.dynamic is not None:
            autocast = "" if ambient is None else f', torch.autocast("cpu", dtype={ambient})'
            lines += [f"# later calls: the dims {list(self.dynamic.dims)} (from the right) at other sizes",
                      f"for sizes in {list(self.dynamic.calls)}:",
                      "    shapes = [list(s) for s, *_ in SPECS]",
                      f"    for dim, size in zip({list(self.dynamic.dims)}, sizes):",
                      "        for shape in shapes:",
                      "            if len(shape) >= -dim and shape[dim] != 1:",
                      "                shape[dim] = size",
                      "    again = [make_tensor(tuple(shape), *spec[1:]) for shape, spec in zip(shapes, SPECS)]",
                      f"    with {grad}{autocast}:",
                      "        print(sizes, run.compiled(*again), model(*again), sep='\\n')"]
        return lines


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
        self.autocast_regions = True
        """False runs the steps of the autocast region without autocast (the oracle's float64
        truth, which autocast would not cast anyway: see ``oracle._eager``)."""
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
        start, stop = self.program.autocast.region or (len(self._steps), len(self._steps))
        if not self.autocast_regions:
            start = stop
        for fn, reads in self._steps[:start]:
            values.append(fn(self, *(values[r] for r in reads)))
        if start < stop:
            with torch.autocast("cpu", dtype=self.program.autocast.region_dtype):
                for fn, reads in self._steps[start:stop]:
                    values.append(fn(self, *(values[r] for r in reads)))
        for fn, reads in self._steps[stop:]:
            values.append(fn(self, *(values[r] for r in reads)))
        return tuple(values[i] for i in self.program.outputs)


def build_module(program: Program) -> ProgramModule:
    """The program's module in eval mode, its weights inference tensors where the program says."""
    if program.inference_weights == "created":
        with torch.inference_mode():
            return ProgramModule(program).eval()
    module = ProgramModule(program).eval()
    if program.inference_weights == "loaded":
        with torch.inference_mode():
            state = {k: v.clone() for k, v in module.state_dict().items()}
            module.load_state_dict(state, assign=True)
    return module


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


def _result(step: Step, operands: list[Value], autocast: torch.dtype | None = None,
            layer_operands: list[Value] | None = None) -> Value | None:
    """The step's result, inferred by running it on meta tensors (on fake CPU tensors under
    ``autocast``, which meta tensors ignore); None where torch rejects it (the generator then
    drops the step: the pool's predicates are coarse on purpose). The step's layer is built for
    ``layer_operands`` (default: ``operands``)."""
    layer_operands = operands if layer_operands is None else layer_operands
    if autocast is not None:
        with FakeTensorMode(), torch.autocast("cpu", dtype=autocast):
            return _result_on(step, operands, layer_operands, lambda v: torch.empty(v.shape, dtype=v.dtype), "")
    return _result_on(step, operands, layer_operands, _meta, "device='meta', ")


def _result_on(step: Step, operands: list[Value], layer_operands: list[Value], tensor,
               device: str) -> Value | None:
    names = [f"_{i}" for i in range(len(operands))]
    layer = None
    source = step.module_source(layer_operands)
    if source is not None:
        layer = eval(source.replace("dtype=", f"{device}dtype="), {"torch": torch})  # noqa: S307
    holder = torch.nn.Module()
    holder.layer = layer
    try:
        out = _compile_step(step.expression(names, "self.layer"), len(names))(holder, *map(tensor, operands))
    except (RuntimeError, IndexError, ValueError, TypeError):
        return None
    if out.numel() == 0:
        return None  # an empty slice: nothing to compare
    op = OPS[step.op]
    exact = out.dtype not in FLOATS or (op.preserves_exact and all(
        o.dtype == torch.bool or (o.dtype in FLOATS and o.exact) for o in operands))
    return Value(tuple(out.shape), out.dtype, exact)


@st.composite
def _step(draw, values: list[Value], autocast: torch.dtype | None = None) -> tuple[Step, Value] | None:
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
    result = _result(step, operands, autocast)
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
    attempts = draw(st.integers(1, max_steps))
    ambient, region_dtype, (start, stop) = None, None, (attempts, attempts)
    if draw(st.integers(0, 4)) == 0:  # autocast: around the calls, around some steps, or both
        kind = draw(st.sampled_from(["ambient", "region", "both"]))
        if kind != "region":
            ambient = draw(st.sampled_from(AUTOCAST_DTYPES))
        if kind != "ambient":
            region_dtype = draw(st.sampled_from(AUTOCAST_DTYPES))
            start = draw(st.integers(0, attempts - 1))
            stop = draw(st.integers(start + 1, attempts))
    region: list[int] = []
    for attempt in range(attempts):
        inside = start <= attempt < stop
        drawn = draw(_step(values, region_dtype if inside else ambient))
        if drawn is not None:
            if inside:
                region.append(len(steps))
            steps.append(drawn[0])
            values.append(drawn[1])
    if not steps:  # every drawn step was dropped: a one-op program still tests something
        target = torch.float16 if inputs[0].dtype == torch.float32 else torch.float32
        steps.append(Step(op="cast", reads=(0,), args=(("dtype", str(target)),)))
        values.append(_result(steps[0], values[:1], ambient))
    outputs = [len(values) - 1]
    extra = draw(st.integers(len(inputs), len(values) - 1))
    if extra not in outputs and draw(st.booleans()):
        outputs.append(extra)
    autocast = Autocast(region=(region[0], region[-1] + 1) if region else None,
                        region_dtype=region_dtype if region else None, ambient=ambient)
    program = Program(inputs=tuple(inputs), steps=tuple(steps), outputs=tuple(outputs),
                      options=draw(_options(steps)), seed=draw(st.integers(0, 2**20)), values=tuple(values),
                      autocast=autocast)
    inference = draw(st.sampled_from([None, None, None, "created", "loaded"])) if program.has_weights else None
    dynamic = draw(_dynamic(program)) if draw(st.integers(0, 3)) == 0 else None
    return attrs.evolve(program, dynamic=dynamic, inference_weights=inference)


AUTOCAST_DTYPES = [torch.bfloat16, torch.float16]


def runs_at(program: Program, shapes: list[tuple[int, ...]]) -> bool:
    """Eager accepts the program on inputs of these shapes (on fake tensors, under its
    autocast) and no output is empty. The steps hold sizes drawn for the first shapes (a
    Linear's width, a reshape's target, a select's index): at other sizes some fail."""
    values = [Value(shape, i.dtype, True) for shape, i in zip(shapes, program.inputs)]
    region = program.autocast.region or (-1, -1)
    for k, step in enumerate(program.steps):
        autocast = program.autocast.region_dtype if region[0] <= k < region[1] else program.autocast.ambient
        result = _result(step, [values[r] for r in step.reads], autocast,
                         [program.values[r] for r in step.reads])
        if result is None or result.dtype != program.values[len(values)].dtype:
            return False
        values.append(result)
    return True


@st.composite
def _dynamic(draw, program: Program) -> Dynamic | None:
    """Dims of the broadcast shape (size >= 2: dynamo specialises 0 and 1) to make dynamic, with
    bounds (or ``dynamic=True``) and 2-3 later calls' sizes where eager runs the program, inside
    and beyond the bounds. None where no dim takes another size."""
    shapes = [i.shape for i in program.inputs]
    rank = max(len(s) for s in shapes)
    base = {}
    for dim in range(-rank, 0):
        sizes = {s[dim] for s in shapes if len(s) >= -dim} - {1}
        if sizes and min(sizes) >= 2:
            base[dim] = sizes.pop()
    if not base:
        return None
    dims = sorted(draw(st.lists(st.sampled_from(sorted(base)), min_size=1, max_size=2, unique=True)))
    marked = draw(st.booleans())
    bounds = None
    if marked:
        bounds = []
        for dim in dims:
            low = draw(st.integers(2, base[dim]))
            bounds.append((low, draw(st.integers(max(base[dim], low + 1), base[dim] + 4))))
        bounds = tuple(bounds)
    calls = []
    for _ in range(draw(st.integers(2, 3))):
        sizes = []
        for k, dim in enumerate(dims):
            low, high = bounds[k] if marked else (2, 16)
            inside = draw(st.booleans())
            sizes.append(draw(st.integers(low, high) if inside else
                              st.integers(max(1, low - 2), low - 1) | st.integers(high + 1, high + 4) if marked
                              else st.integers(17, 24)))
        calls.append(tuple(sizes))
    dynamic = Dynamic(dims=tuple(dims), bounds=bounds, calls=())
    probe = attrs.evolve(program, dynamic=dynamic)
    calls = [c for c in dict.fromkeys(calls) if runs_at(probe, probe.shapes(c))]
    return attrs.evolve(dynamic, calls=tuple(calls)) if calls else None


def describe(program: Program) -> str:
    """One line per step, for logs: ``v3 = torch.relu(v1)  # float16 (2, 3) exact``."""
    n = len(program.inputs)
    names = [f"v{i}" for i in range(len(program.values))]
    lines = [f"{names[k]}: input {i.dtype} {i.shape} scale {i.scale}{' transposed' if i.transposed else ''}"
             for k, i in enumerate(program.inputs)]
    region = program.autocast.region or (-1, -1)
    for k, step in enumerate(program.steps):
        v = program.values[n + k]
        expression = step.expression([names[r] for r in step.reads], program.layer_name(k))
        inside = f"  [autocast {program.autocast.region_dtype}]" if region[0] <= k < region[1] else ""
        lines.append(f"{names[n + k]} = {expression}"
                     f"  # {v.dtype} {v.shape}{' exact' if v.exact else ''}{inside}")
    if program.autocast.ambient is not None:
        lines.append(f"called under torch.autocast('cpu', dtype={program.autocast.ambient}), then plainly")
    if program.inference_weights:
        lines.append(f"weights {program.inference_weights} under torch.inference_mode(); calls under it")
    if program.dynamic is not None:
        d = program.dynamic
        how = "dynamic=True" if d.bounds is None else f"mark_dynamic bounds {list(d.bounds)}"
        lines.append(f"dynamic dims {list(d.dims)} ({how}), later calls at sizes {list(d.calls)}")
    return textwrap.indent("\n".join(lines), "  ")
