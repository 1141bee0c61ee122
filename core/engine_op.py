"""``torch.ops.plugtrt.execute_engine``: how an exported program (:func:`plugtrt.export`) runs
an engine.

Each engine of an exported program is one call of this op. Its arguments are all a program
can hold without Python objects, so ``torch.export.save``/``load`` carry them as they are:

- ``inputs``: the block's tensors;
- ``payload``: a uint8 constant of the program, the engine's :class:`EngineArtifact` (the
  serialized plan, the boundary specs and the network snapshot the ``reference`` runtime
  evaluates), pickled;
- ``fallback``: a uint8 constant, the block's aten subgraph as a ``torch.export`` program of
  its own (``torch.export.save``'s bytes; empty when the block could not be stored);
- ``spec``: a JSON string (:class:`EngineCall`) naming the engine, the TensorRT it was built
  with, the runtime, the payload's SHA-256, each output's dtype and its shape as an expression
  of the input sizes, for the fake implementation that lets ``torch.export`` trace through the
  op without running it.

The payload is unpickled by :class:`_PayloadUnpickler`, which admits only the classes an
artifact is made of (plugtrt's records, numpy arrays, torch dtypes): a crafted payload cannot
name a function to call. The plan itself is deserialized by TensorRT; see docs/serving.md for
what loading a program from elsewhere trusts.

An engine that cannot run here (another TensorRT flavour or version, a runtime this machine
lacks) raises :class:`IncompatibleProgramError` naming the cause and the fix, before TensorRT
sees the plan; with ``fallback="pytorch"`` (recorded at export, set by ``plugtrt.load`` or
``$PLUGTRT_PROGRAM_FALLBACK``) the stored subgraph runs instead, with one warning.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import operator
import os
import pickle
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from plugtrt import trt_adapter
from plugtrt.engine import EngineArtifact
from plugtrt.errors import PlugtrtError

FALLBACK_ENV = "PLUGTRT_PROGRAM_FALLBACK"
FALLBACKS = ("error", "pytorch")


class IncompatibleProgramError(PlugtrtError):
    """An exported program's engine cannot run on this machine; the message says why and how
    to run the program anyway."""


@attrs.frozen(kw_only=True)
class EngineCall:
    """What the op's ``spec`` string holds (JSON), so that a loaded program can be checked and
    traced without unpickling anything."""

    name: str
    sha256: str
    """Of the payload's bytes: a payload that does not match is refused."""
    tensorrt: str
    """``flavour==version`` that built the plan (:func:`plugtrt.trt_adapter.version`)."""
    runtime: str
    capability: str | None = None
    """``major.minor`` of the GPU that built a plan for the ``tensorrt`` runtime (a plan runs
    only on the GPU generation it was built for); None for other runtimes."""
    fallback: str = attrs.field(default="error", validator=attrs.validators.in_(FALLBACKS))
    outputs: tuple[tuple[tuple[str, ...], str], ...]
    """Per output: its shape as expressions of the input sizes, and its dtype."""

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EngineCall:
        raw = json.loads(text)
        raw["outputs"] = tuple((tuple(s), d) for s, d in raw["outputs"])
        return cls(**raw)


# -- shapes as expressions ---------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_CALLS: dict[str, Callable[..., Any]] = {
    "FloorDiv": operator.floordiv, "Mod": operator.mod, "PythonMod": operator.mod,
    "Max": lambda *a: torch.sym_max(*a) if len(a) == 2 else max(a),
    "Min": lambda *a: torch.sym_min(*a) if len(a) == 2 else min(a),
    "CeilDiv": lambda a, b: -(-a // b)}


def evaluate_size(expression: str, sizes: dict[str, Any]) -> Any:
    """The value of a size expression (sympy's printing of a symbolic size, over names
    ``x<i>_<d>``) for these input sizes, which may be ``SymInt`` while tracing. Only
    arithmetic is admitted: a spec string cannot run anything."""
    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in sizes:
            return sizes[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS:
            return _CALLS[node.func.id](*map(walk, node.args))
        raise IncompatibleProgramError(f"size expression {expression!r} holds {ast.dump(node)}, "
                                       "which plugtrt does not evaluate; the program is corrupt")
    return walk(ast.parse(expression, mode="eval"))


def input_sizes(inputs: Sequence[torch.Tensor]) -> dict[str, Any]:
    return {f"x{i}_{d}": size for i, x in enumerate(inputs) for d, size in enumerate(x.shape)}


# -- the payload -------------------------------------------------------------------------

_ALLOWED_GLOBALS = {
    ("plugtrt.engine", "_artifact"), ("plugtrt.engine", "BoundarySpec"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"), ("builtins", "frozenset"), ("builtins", "set"),
    ("builtins", "slice"), ("builtins", "complex"), ("_codecs", "encode"),
}


class _PayloadUnpickler(pickle.Unpickler):
    """Unpickles an :class:`EngineArtifact` and nothing else: the records of
    :mod:`plugtrt.network_snapshot`, numpy arrays and torch dtypes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or module == "plugtrt.network_snapshot" or (
                module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise IncompatibleProgramError(
            f"an engine payload names {module}.{name}, which an engine artifact never holds; "
            "the program was not written by plugtrt.export or was altered: export it again")


def pack_artifact(artifact: EngineArtifact) -> torch.Tensor:
    """The artifact as the uint8 tensor a program holds (plan and network both, so that the
    program runs with either runtime)."""
    data = pickle.dumps(artifact, protocol=5)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def unpack_artifact(payload: torch.Tensor, sha256: str) -> EngineArtifact:
    data = payload.detach().cpu().contiguous().numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IncompatibleProgramError("an engine payload does not match the digest its program "
                                       "records; the file is damaged or altered: export it again")
    artifact = _PayloadUnpickler(io.BytesIO(data)).load()
    if not isinstance(artifact, EngineArtifact):
        raise IncompatibleProgramError("an engine payload holds no engine artifact; export the program again")
    return artifact


# -- running -----------------------------------------------------------------------------

def incompatibility(call: EngineCall) -> str | None:
    """Why the engine of ``call`` cannot run here, or None when it can."""
    here = trt_adapter.version()
    if call.tensorrt != here:
        return (f"it was built with {call.tensorrt} and this machine has "
                f"{'no TensorRT' if here == 'none' else here}; a plan runs only with the "
                "TensorRT flavour and version that built it")
    from plugtrt.manager import default_registry
    from plugtrt.settings import CompilationSettings

    registry = default_registry()
    if call.runtime not in registry.runtimes:
        return f"it runs with the {call.runtime!r} runtime, which is not installed here"
    reason = registry.runtimes[call.runtime].record.available(CompilationSettings())
    if reason is not None:
        return f"it runs with the {call.runtime!r} runtime, which cannot run here: {reason.rstrip('.')}"
    if call.runtime == "tensorrt" and call.capability is not None and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        if call.capability != f"{major}.{minor}":
            return (f"its plan was built on a GPU of compute capability {call.capability} and this "
                    f"GPU ({torch.cuda.get_device_name()}) is {major}.{minor}; a plan runs only on "
                    "the GPU generation that built it")
    return None


def fixes(call: EngineCall, has_fallback: bool) -> str:
    """What the user can do about an engine that cannot run here."""
    options = ["export the model again on a machine like this one (plugtrt.export)"]
    if call.runtime == "tensorrt":
        options.append("load it with plugtrt.load(path, runtime='reference') to evaluate the "
                     "engines' networks with torch ops")
    if has_fallback:
        options.append(f"load it with plugtrt.load(path, fallback='pytorch') (or set "
                     f"{FALLBACK_ENV}=pytorch) to run its stored PyTorch subgraphs instead")
    return "; or ".join(options)


_warned: set[str] = set()


class _Runner:
    """One engine of a loaded program, ready to call: its runtime module, or its stored
    subgraph when the engine cannot run here and the program falls back."""

    def __init__(self, call: EngineCall, payload: torch.Tensor, fallback: torch.Tensor):
        self.call = call
        reason = incompatibility(call)
        wanted = os.environ.get(FALLBACK_ENV) or call.fallback
        if reason is None:
            self.module = self._engine(payload)
        elif wanted == "pytorch" and fallback.numel():
            if reason not in _warned:  # one warning for all the engines one cause stops
                _warned.add(reason)
                warnings.warn(f"plugtrt: engines of this exported program cannot run here ({reason}); "
                              f"their stored PyTorch subgraphs run instead (first: {call.name})", stacklevel=4)
            self.module = torch.export.load(io.BytesIO(fallback.cpu().numpy().tobytes())).module()
        else:
            raise IncompatibleProgramError(
                f"plugtrt: engine {call.name} of this exported program cannot run here: {reason}. "
                f"To fix it, {fixes(call, bool(fallback.numel()))}.")

    def _engine(self, payload: torch.Tensor) -> torch.nn.Module:
        from plugtrt.manager import default_registry
        from plugtrt.settings import CompilationSettings

        registry = default_registry()
        artifact = unpack_artifact(payload, self.call.sha256)
        return registry.runtimes[self.call.runtime].record.create(artifact, CompilationSettings(), registry)

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        result = self.module(*inputs)
        return list(result) if isinstance(result, (tuple, list)) else [result]


_runners: dict[tuple[str, str], _Runner] = {}
_runners_lock = threading.Lock()


def runner(spec: str, payload: torch.Tensor, fallback: torch.Tensor) -> _Runner:
    """The runner of this engine, made once per process (a loaded program deserialises each
    engine on its first call, not on every call)."""
    key = (spec, os.environ.get(FALLBACK_ENV, ""))
    with _runners_lock:
        found = _runners.get(key)
        if found is None:
            found = _runners[key] = _Runner(EngineCall.from_json(spec), payload, fallback)
    return found


@torch.library.custom_op("plugtrt::execute_engine", mutates_args=())
def execute_engine(inputs: list[torch.Tensor], payload: torch.Tensor, fallback: torch.Tensor,
                   spec: str) -> list[torch.Tensor]:
    """Run one engine of an exported program on ``inputs``."""
    outputs = runner(spec, payload, fallback)(inputs)
    # a custom op's outputs may not alias its inputs: an engine that passes an input through
    # (the reference runtime returns it as it is) gets a copy
    held = {x.untyped_storage().data_ptr() for x in inputs}
    return [y.clone() if y.untyped_storage().data_ptr() in held else y for y in outputs]


@execute_engine.register_fake
def _execute_engine_fake(inputs: list[torch.Tensor], payload: torch.Tensor, fallback: torch.Tensor,
                         spec: str) -> list[torch.Tensor]:
    call = EngineCall.from_json(spec)
    sizes = input_sizes(inputs)
    device = inputs[0].device if inputs else torch.device("cpu")
    return [torch.empty([evaluate_size(e, sizes) for e in shape], dtype=getattr(torch, dtype), device=device)
            for shape, dtype in call.outputs]
