"""``plugtrt.export``: a ``torch.export`` program with plugtrt's engines embedded, to save, ship
and serve (this module is ``plugtrt.exporting``, so that ``plugtrt.export`` stays the function).

The model goes through ``torch.export``, then through the backend's own pipeline (tracing to
aten with the same decompositions and weights frozen into constants, lowering passes, support
check, partitioner, converters, TensorRT's builder, the runtime plugins: :func:`compile_aten`),
and the partitioned module is exported once more. In that second export each engine is a call
of ``torch.ops.plugtrt.execute_engine`` (:mod:`plugtrt.engine_op`), whose engine and stored
PyTorch subgraph are constants of the program; what stays in PyTorch stays aten ops.

``torch.export.save(ep, path)`` writes it; ``torch.export.load(path)`` in a process that has
imported plugtrt (the op is registered on import) gives it back, and calling it deserialises
each engine on its first call: nothing is traced, converted or built.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import sympy
import torch
import torch.fx
import torch.utils._pytree as pytree
from torch.export import Dim, ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from plugtrt import engine_op, trt_adapter
from plugtrt.compiler import ContainedEngine, compile_aten
from plugtrt.decompositions import decomposition_table
from plugtrt.errors import InvalidOptionError, PlugtrtError
from plugtrt.manager import default_registry
from plugtrt.program_io import program_constant
from plugtrt.report import CompileReport, record
from plugtrt.settings import CompilationSettings
from plugtrt.tracing import trace_to_aten

logger = logging.getLogger("plugtrt")

def export(model: torch.nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None, *,
           dynamic_shapes: Any = None, options: Mapping[str, Any] | None = None) -> ExportedProgram:
    """Export ``model`` called on ``args``/``kwargs`` with its TensorRT engines embedded.

    ``dynamic_shapes`` follows ``torch.export.export``'s convention; each dynamic dim's range
    (``Dim("batch", min=1, max=32)``) becomes the engines' optimization profile, with the
    example's size as the profile's optimum. ``options`` are the backend's
    (``torch.compile(..., options=...)``), plus ``fallback``: ``"error"`` (the default: a
    program whose engines cannot run where it is loaded raises, naming why) or ``"pytorch"``
    (it runs its stored PyTorch subgraphs instead, with one warning).
    """
    options = dict(options or {})
    fallback = options.pop("fallback", "error")
    if fallback not in engine_op.FALLBACKS:
        raise InvalidOptionError(f"option 'fallback' is {fallback!r}; use one of {list(engine_op.FALLBACKS)}")
    # the engines must carry both the plan and the network snapshot: a cache entry holds only
    # what one runtime reads, so export always builds
    settings = attrs.evolve(CompilationSettings.from_options(options), reuse_cached_engines=False)
    registry = default_registry()
    args, kwargs = tuple(args), dict(kwargs or {})
    with torch.no_grad():
        program = torch.export.export(model, args, kwargs, dynamic_shapes=dynamic_shapes)
        leaves = pytree.tree_leaves((args, kwargs))
        aten, bounds = _aten_graph(program, leaves, registry, settings)
        report = CompileReport(graph=f"export.{type(model).__name__}", dynamic=bool(bounds))
        parted = compile_aten(aten, registry, settings, report, bounds or None)
        record(report)
        runtime = report.engines[0].runtime if report.engines else None  # one per compile
        calls = _replace_engines(parted, _EngineContext(fallback, bounds, runtime,
                                                        _capability(runtime, settings, leaves)))
        shipped = _shipped(model, parted, program.call_spec.out_spec)
        out = torch.export.export(shipped, args, kwargs,
                                  dynamic_shapes=_leaf_dims(program, leaves, bounds))
    logger.debug("exported %s: %d engine(s), %d op(s) in PyTorch", report.graph, calls,
                 len(report.pytorch_ops))
    return out


def _aten_graph(program: ExportedProgram, leaves: Sequence[Any], registry: Any,
                settings: CompilationSettings) -> tuple[torch.fx.GraphModule, dict]:
    """The program's graph traced to aten the way the backend traces dynamo's, with the
    parameters, buffers and constants frozen in; and each size symbol's (min, opt, max)."""
    signature = program.graph_signature
    if any(spec.kind != OutputKind.USER_OUTPUT for spec in signature.output_specs):
        raise PlugtrtError("plugtrt.export: the model writes its buffers or inputs (a training-mode "
                           "batch norm?); call model.eval() first: an exported program is for inference")
    example, weights, user = [], [], iter(leaves)
    for spec in signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            value = next(user)
            if not isinstance(value, torch.Tensor):
                continue  # export specialised it: it is no placeholder
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = program.state_dict[spec.target] if spec.target in program.state_dict \
                else program.constants[spec.target]
            weights.append(len(example))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            value = program.constants[spec.target]
            weights.append(len(example))
        else:
            raise PlugtrtError(f"plugtrt.export does not take a program with {spec.kind.name} inputs")
        example.append(value)
    gm = program.graph_module
    symbolic = bool(program.range_constraints)
    if symbolic:
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                node.meta["example_value"] = node.meta["val"]
    table = decomposition_table(registry, settings)
    aten, mutated = trace_to_aten(gm, example, weights, table, symbolic=symbolic,
                                  keep_whole=registry.converters.keys())
    if mutated:
        raise PlugtrtError("plugtrt.export: the model writes its inputs; an exported program is "
                           "for inference, call model.eval() and do not write the inputs")
    return aten, _bounds(program, leaves, settings)


def _bounds(program: ExportedProgram, leaves: Sequence[Any], settings: CompilationSettings) -> dict:
    """Each size symbol's profile: the range ``dynamic_shapes`` gave it, its example size as
    the optimum."""
    examples: dict[sympy.Symbol, int] = {}
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    users = [n for n, s in zip(placeholders, program.graph_signature.input_specs)
             if s.kind == InputKind.USER_INPUT]
    tensors = [x for x in leaves if isinstance(x, torch.Tensor)]
    for node, x in zip(users, tensors):
        for size, value in zip(node.meta["val"].shape, x.shape):
            if isinstance(size, torch.SymInt) and isinstance(size.node.expr, sympy.Symbol):
                examples[size.node.expr] = int(value)
    bounds = {}
    for symbol, ranges in program.range_constraints.items():
        if symbol not in examples:
            continue
        upper = ranges.upper
        if not upper.is_finite:
            if settings.max_dynamic_size is None:
                raise InvalidOptionError(
                    f"plugtrt.export: dynamic size {symbol} has no upper bound, and an engine's "
                    "profile needs one; give its Dim a max (Dim('batch', max=64)) or set the "
                    "option max_dynamic_size")
            upper = settings.max_dynamic_size
        lower = max(int(ranges.lower), 1)
        bounds[symbol] = (lower, min(max(examples[symbol], lower), int(upper)), int(upper))
    return bounds


def _leaf_dims(program: ExportedProgram, leaves: Sequence[Any], bounds: dict) -> Any:
    """``dynamic_shapes`` for the second export, in the structure of ``(args, kwargs)``: each
    dim the first export made a symbol is a ``Dim`` with the symbol's range."""
    if not bounds:
        return None
    dims = {symbol: Dim(f"d_{symbol}", min=lo, max=hi) for symbol, (lo, _, hi) in bounds.items()}
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    users = iter(n for n, s in zip(placeholders, program.graph_signature.input_specs)
                 if s.kind == InputKind.USER_INPUT)
    per_leaf = []
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            per_leaf.append(None)
            continue
        node = next(users)
        per_leaf.append({d: dims[s.node.expr] for d, s in enumerate(node.meta["val"].shape)
                         if isinstance(s, torch.SymInt) and s.node.expr in dims} or None)
    args_dims, kwargs_dims = pytree.tree_unflatten(per_leaf, program.call_spec.in_spec)
    return (*args_dims, *kwargs_dims.values())


class _Shipped(torch.nn.Module):
    """The partitioned module behind the model's own call signature: the second export
    traces this, so the program takes and returns what the model does, by the same names."""

    def __init__(self, parted: torch.fx.GraphModule, out_spec: Any):
        super().__init__()
        self.parted = parted
        self.out_spec = out_spec

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        tensors = [x for x in pytree.tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]
        return pytree.tree_unflatten(list(self.parted(*tensors)), self.out_spec)


def _shipped(model: torch.nn.Module, parted: torch.fx.GraphModule, out_spec: Any) -> _Shipped:
    """A :class:`_Shipped` whose ``forward`` has ``model.forward``'s signature: export names
    the program's inputs after it (a Triton model's inputs are then ``x``, not ``args_0``)."""
    forward = _Shipped.forward

    def named_forward(self, *args: Any, **kwargs: Any) -> Any:
        return forward(self, *args, **kwargs)

    own = inspect.signature(model.forward)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named_forward.__signature__ = own.replace(parameters=[self_param, *own.parameters.values()])
    kind = type("Shipped", (_Shipped,), {"forward": named_forward})
    return kind(parted, out_spec)


class _EngineCall(torch.nn.Module):
    """Stands where an engine's runtime module stood: calls the op with the engine's payload
    and stored subgraph, which the export makes constants of the program."""

    def __init__(self, payload: torch.Tensor, fallback: torch.Tensor, spec: str):
        super().__init__()
        self.register_buffer("payload", payload)
        self.register_buffer("fallback", fallback)
        self.spec = spec

    def forward(self, *inputs: Any) -> tuple[torch.Tensor, ...]:
        tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
        return tuple(torch.ops.plugtrt.execute_engine(tensors, self.payload, self.fallback, self.spec))


@attrs.frozen
class _EngineContext:
    """What every engine call of one export records: the ``fallback`` choice, the sizes'
    profiles (which the stored subgraphs take) and the runtime the engines were made for."""

    fallback: str
    bounds: Mapping
    runtime: str | None
    capability: str | None


def _capability(runtime: str | None, settings: CompilationSettings, leaves: Sequence[Any]) -> str | None:
    """The compute capability of the GPU the ``tensorrt`` runtime's plans are built for: the
    ``device`` option's, else the inputs', else the current one."""
    if runtime != "tensorrt":
        return None
    device = settings.device or next((x.device for x in leaves if isinstance(x, torch.Tensor)
                                      and x.device.type == "cuda"), torch.device("cuda"))
    major, minor = torch.cuda.get_device_capability(device)
    return f"{major}.{minor}"


def _replace_engines(parted: torch.fx.GraphModule, context: _EngineContext) -> int:
    """Swap every engine module of ``parted`` (nested ones too) for an :class:`_EngineCall`;
    returns how many."""
    count = 0
    for owner in [m for m in parted.modules() if isinstance(m, torch.fx.GraphModule)]:
        for node in owner.graph.nodes:
            if node.op != "call_module":
                continue
            module = owner.get_submodule(node.target)
            if isinstance(module, ContainedEngine):
                owner.add_submodule(node.target, _engine_call(module, context))
                count += 1
    return count


def _engine_call(contained: ContainedEngine, context: _EngineContext) -> _EngineCall:
    artifact = contained.engine.artifact
    placeholders = [n.meta["val"] for n in contained.block.graph.nodes if n.op == "placeholder"]
    names = _size_names([v for v in placeholders if isinstance(v, torch.Tensor)])
    block_out = next(n for n in contained.block.graph.nodes if n.op == "output").args[0]
    values = [n.meta["val"] for n in (block_out if isinstance(block_out, (tuple, list)) else [block_out])]
    payload = engine_op.pack_artifact(artifact)
    call = engine_op.EngineCall(
        name=artifact.name, sha256=hashlib.sha256(payload.numpy().tobytes()).hexdigest(),
        tensorrt=trt_adapter.version(), runtime=context.runtime, capability=context.capability,
        fallback=context.fallback,
        outputs=tuple((_shape_text(v, names), str(v.dtype).removeprefix("torch.")) for v in values))
    stored = _stored_subgraph(contained.block, placeholders, context.bounds)
    return _EngineCall(payload, stored, call.to_json())


def _size_names(tensors: Sequence[torch.Tensor]) -> dict[sympy.Symbol, str]:
    """Each size symbol, by the first input dim that is exactly that symbol (``x<i>_<d>``)."""
    names: dict[sympy.Symbol, str] = {}
    for i, x in enumerate(tensors):
        for d, size in enumerate(x.shape):
            if isinstance(size, torch.SymInt) and isinstance(size.node.expr, sympy.Symbol):
                names.setdefault(size.node.expr, f"x{i}_{d}")
    return names


def _size_text(size: Any, names: Mapping[sympy.Symbol, str]) -> str:
    """A size as an expression of the engine's input dims (``x<i>_<d>``)."""
    if not isinstance(size, torch.SymInt):
        return str(int(size))
    expr = size.node.expr
    missing = expr.free_symbols - names.keys()
    if missing:
        raise PlugtrtError(f"plugtrt.export: an engine's size {expr} depends on "
                           f"{sorted(map(str, missing))}, which no engine input carries as a dim; "
                           "export with static shapes, or keep that op in PyTorch (torch_executed_ops)")
    return str(expr.xreplace({s: sympy.Symbol(n, integer=True) for s, n in names.items()}))


def _shape_text(value: torch.Tensor, names: Mapping[sympy.Symbol, str]) -> tuple[str, ...]:
    return tuple(_size_text(size, names) for size in value.shape)


def _stored_subgraph(block: torch.fx.GraphModule, placeholders: Sequence[Any], bounds: Mapping) -> torch.Tensor:
    """The block's aten subgraph as the bytes of a ``torch.export`` program taking the block's
    tensors, so that a program whose engine cannot run can still run it. Sizes the block takes
    as ints (computed in PyTorch before it) are recomputed from its tensors' dims."""
    tensors = [v for v in placeholders if isinstance(v, torch.Tensor)]
    names = _size_names(tensors)
    try:
        sizes = {i: _size_text(v, names) for i, v in enumerate(placeholders) if not isinstance(v, torch.Tensor)}
        dims = {}
        for v in tensors:
            for size in v.shape:
                if isinstance(size, torch.SymInt) and size.node.expr in names and size.node.expr not in dims:
                    lower, _, upper = bounds[size.node.expr]
                    dims[size.node.expr] = Dim(names[size.node.expr], min=lower, max=upper)
        examples = tuple(torch.zeros([_hint(s) for s in v.shape], dtype=v.dtype) for v in tensors)
        dynamic = tuple({d: dims[s.node.expr] for d, s in enumerate(v.shape)
                         if isinstance(s, torch.SymInt) and s.node.expr in dims} or None for v in tensors)
        _contiguous_constants(block)
        program = torch.export.export(_Block(block, sizes, len(placeholders)), examples,
                                      dynamic_shapes={"tensors": dynamic} if dims else None)
    except Exception as exc:  # the engine still ships; only its fallback is missing
        warnings.warn(f"plugtrt.export: could not store the PyTorch subgraph of an engine, so the "
                      f"program cannot fall back to it: {exc!r}", stacklevel=4)
        return torch.empty(0, dtype=torch.uint8)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def _contiguous_constants(block: torch.fx.GraphModule) -> None:
    """Make the block's constants contiguous: a folded transpose is a strided view, which
    ``torch.export.save`` writes with a warning that its storage is incomplete."""
    for owner in block.modules():
        for name, value in list(owner._buffers.items()):
            if value is not None and not value.is_contiguous():
                owner._buffers[name] = value.contiguous()
        for name, value in list(vars(owner).items()):
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) \
                    and not value.is_contiguous():
                setattr(owner, name, value.contiguous())


def _hint(size: Any) -> int:
    return int(size.node.hint) if isinstance(size, torch.SymInt) else int(size)


class _Block(torch.nn.Module):
    """A block's graph called with its tensors only, returning a tuple: the sizes it takes as
    ints are computed from the tensors' dims (``sizes``: position -> expression)."""

    def __init__(self, block: torch.fx.GraphModule, sizes: Mapping[int, str], count: int):
        super().__init__()
        self.block, self.sizes, self.count = block, dict(sizes), count

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dims = engine_op.input_sizes(tensors)
        given = iter(tensors)
        inputs = [engine_op.evaluate_size(self.sizes[i], dims) if i in self.sizes else next(given)
                  for i in range(self.count)]
        result = self.block(*inputs)
        return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def save(program: ExportedProgram, path: str | os.PathLike) -> None:
    """``torch.export.save``: the program's engines are constants, so they are in the file."""
    torch.export.save(program, path)


def load(path: str | os.PathLike, *, fallback: str | None = None, runtime: str | None = None
         ) -> ExportedProgram:
    """``torch.export.load``, then check every engine against this machine at once (rather
    than at the first call). ``fallback="pytorch"`` runs the stored PyTorch subgraph of each
    engine that cannot run here, with one warning; ``runtime`` runs the engines with another
    runtime plugin than the one they were exported with (``"reference"`` on a machine
    without a GPU)."""
    if fallback is not None and fallback not in engine_op.FALLBACKS:
        raise InvalidOptionError(f"fallback is {fallback!r}; use one of {list(engine_op.FALLBACKS)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"plugtrt.load: no saved program at {path}")
    program = torch.export.load(path)
    for node in program.graph.nodes:
        if node.target is not torch.ops.plugtrt.execute_engine.default:
            continue
        call = engine_op.EngineCall.from_json(node.args[3])
        changes = {k: v for k, v in (("fallback", fallback), ("runtime", runtime)) if v is not None}
        if changes:
            call = attrs.evolve(call, **changes)
            node.args = (*node.args[:3], call.to_json())
        reason = engine_op.incompatibility(call)
        if reason is not None and call.fallback != "pytorch" and \
                os.environ.get(engine_op.FALLBACK_ENV) != "pytorch":
            stored = bool(program_constant(program, node.args[2]).numel())
            raise engine_op.IncompatibleProgramError(
                f"plugtrt: engine {call.name} of {path} cannot run here: {reason}. To fix it, "
                f"{engine_op.fixes(call, stored)}.")
    program.graph_module.recompile()
    return program
