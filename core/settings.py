"""``CompilationSettings``: the backend's options, with the original backend's names and defaults.

Built from ``torch.compile(..., options={...})`` by :meth:`CompilationSettings.from_options`,
which rejects an unknown key naming the closest valid one, and a bad value naming the
option, the value and what is allowed. Fields whose ``metadata["engine"]`` is true change
the engines built, so they are part of the engine cache key.
"""
from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import torch
from attrs import validators as v
from torch._ops import OpOverload, OpOverloadPacket

from plugtrt.errors import InvalidOptionError

_PRECISIONS = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def _to_precision(value: object) -> object:
    if isinstance(value, str):
        return _PRECISIONS.get(value.strip().lower().removeprefix("torch."), value)
    if isinstance(value, (set, frozenset, list, tuple)) and len(value) == 1:
        return _to_precision(next(iter(value)))  # the original's enabled_precisions={torch.half}
    return value


def _to_device(value: object) -> object:
    if value is None or isinstance(value, torch.device):
        return value
    if isinstance(value, bool):
        return value  # rejected by the validator: True is not a GPU index
    if isinstance(value, int):
        return torch.device("cuda", value) if value >= 0 else value
    if isinstance(value, str):
        try:
            return torch.device(value)
        except RuntimeError:
            return value
    return value


def _check_device(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and not isinstance(value, torch.device):
        raise ValueError(f"{value!r} is not a device")


def _op_name(op: object) -> str:
    """``aten.sub.Tensor`` for an overload, ``aten.sub`` for a packet, a string as written."""
    if isinstance(op, (OpOverload, OpOverloadPacket)):
        return str(op)
    if isinstance(op, str):
        name = op.strip().removeprefix("torch.ops.")
        parts = name.split(".")
        if len(parts) not in (2, 3) or not hasattr(getattr(torch.ops, parts[0], None) or object(), parts[1]):
            raise ValueError(f"{op!r} names no operator; write it as 'aten.sub.Tensor', 'aten.sub' "
                             "or torch.ops.aten.sub.Tensor")
        if len(parts) == 3 and not hasattr(getattr(getattr(torch.ops, parts[0]), parts[1]), parts[2]):
            raise ValueError(f"{op!r} names no overload of {parts[0]}.{parts[1]}")
        return name
    raise TypeError(f"{op!r} ({type(op).__name__}) is not an operator")


def _to_op_names(value: object) -> object:
    if isinstance(value, (str, OpOverload, OpOverloadPacket)):
        value = [value]
    if isinstance(value, Iterable):
        return frozenset(_op_name(op) for op in value)
    return value


def _to_cache_dir(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and value.strip():
        return os.path.expanduser(value.strip())
    return value


def _check_cache_dir(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and not (isinstance(value, str) and value):
        raise ValueError(f"{value!r} is not a directory path")


def _cache_size(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a number of bytes >= 1")


def _min_block(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not (
        (isinstance(value, int) and value >= 1) or (isinstance(value, float) and value == math.inf)
    ):
        raise ValueError(f"{value!r} is neither a whole number >= 1 nor float('inf')")


def _option(default: Any, validator: Any, allowed: str, *, doc: str, engine: bool = False,
            converter: Any = None):
    """A setting: ``allowed`` is quoted by the error for a bad value, ``doc`` (Markdown) is its row
    in the documentation's options table, ``engine`` puts it in the engine key."""
    return attrs.field(default=default, validator=validator, converter=converter,
                       metadata={"allowed": allowed, "doc": doc, "engine": engine})


_BOOL = v.instance_of(bool)
_NOT_BOOL = v.not_(v.instance_of(bool), msg="a bool is not a count")
_OPT_INT = v.optional([v.instance_of(int), _NOT_BOOL])


_PRESENTATION = frozenset({"debug", "progress_bar", "cache_built_engines", "reuse_cached_engines",
                           "engine_cache_dir", "engine_cache_size", "engine_cache_store"})
"""Settings that change what is logged or where the cache lives, never a compiled graph."""


def _stable_repr(value: Any) -> str:
    """``repr``, with sets sorted: a set of strings iterates in a per-process order."""
    return repr(sorted(map(str, value))) if isinstance(value, (set, frozenset)) else repr(value)


@attrs.frozen(kw_only=True)
class CompilationSettings:
    """Every option of the ``plugtrt`` backend; immutable, derive variants with ``attrs.evolve``."""

    precision: torch.dtype = _option(
        torch.float32, v.in_((torch.float32, torch.float16, torch.bfloat16)),
        "torch.float32, torch.float16 (or torch.half, 'fp16') or torch.bfloat16 ('bf16')",
        engine=True, converter=_to_precision,
        doc=("float precision inside the engines: `torch.float32` (every tensor keeps the model's "
             'own dtype: a half model computes in half, as eager does), `torch.float16` '
             '(`torch.half`, `"fp16"`) or `torch.bfloat16` (`"bf16"`): float tensors compute in '
             'it, except what `plugtrt.precision` keeps in float32 (explicit upcasts, sums of '
             'squares, reductions, softmax and their epilogue). Networks are strongly typed, so '
             "this is a cast inside each engine; outputs return in the model's own dtypes. A value"
             " narrowed into the reduced type (an input, or a float32 region's result read in "
             'half) saturates: finite values beyond its range become its finite limits (a mask of '
             '`finfo(float32).min` stays finite), inf and NaN stay; an explicit cast in the model '
             "overflows as eager's does. Quantized regions (fake quantization, PT2E, FP8 casts: "
             "[Quantization](quantization.md)) are explicit Q/DQ layers that fix their own types; "
             "`precision` governs the unquantized rest."))
    debug: bool = _option(False, _BOOL, "True or False",
        doc=("log every stage: the aten graph, the lowered graph, the partition, each engine's "
             'layer count and build time'))
    workspace_size: int = _option(0, [v.instance_of(int), _NOT_BOOL, v.ge(0)],
                                  "bytes as an int >= 0 (0 leaves TensorRT's default)", engine=True,
        doc="TensorRT workspace memory pool limit in bytes (0: TensorRT's default)")
    min_block_size: int | float = _option(
        5, _min_block, "an int >= 1, or float('inf') for an operator-coverage dry run",
        doc=('fewest ops a TensorRT block may have; smaller blocks stay in PyTorch. '
             '`float("inf")`: coverage dry run'))
    torch_executed_ops: frozenset[str] = _option(
        frozenset(), v.instance_of(frozenset),
        "a set of operators (torch.ops.aten.sub.Tensor, 'aten.sub.Tensor' or 'aten.sub')",
        converter=_to_op_names,
        doc=('ops forced to PyTorch: `torch.ops.aten.sub.Tensor`, `"aten.sub.Tensor"` or a whole '
             'packet `"aten.sub"`'))
    pass_through_build_failures: bool = _option(False, _BOOL, "True or False",
        doc='raise on a conversion or build failure instead of falling back to PyTorch')
    max_aux_streams: int | None = _option(None, [_OPT_INT, v.optional(v.ge(0))],
                                          "None or an int >= 0", engine=True,
        doc="TensorRT builder's maximum auxiliary streams")
    version_compatible: bool = _option(False, _BOOL, "True or False", engine=True,
        doc=('build version-compatible engines (full TensorRT only: TensorRT-RTX lacks the lean '
             'runtime, so its blocks fall back to PyTorch with a warning saying so)'))
    optimization_level: int | None = _option(None, [_OPT_INT, v.optional([v.ge(0), v.le(5)])],
                                             "None or an int from 0 to 5", engine=True,
        doc='TensorRT builder optimisation level, 0–5')
    use_python_runtime: bool = _option(False, _BOOL, "True or False",
        doc="accepted for compatibility; plugtrt's `tensorrt` runtime is always the Python one")
    truncate_long_and_double: bool = _option(False, _BOOL, "True or False", engine=True,
        doc=('run float64 ops in TensorRT as float32 and int64 as int32 (otherwise float64 ops '
             'stay in PyTorch)'))
    use_fast_partitioner: bool = _option(True, _BOOL, "True or False",
        doc='`True`: the `fast` partitioner; `False`: the `global` one')
    enable_experimental_decompositions: bool = _option(False, _BOOL, "True or False", engine=True,
        doc=('also apply the decompositions marked experimental (layer norm, group norm, variance,'
             ' log-softmax) to nodes that no converter accepts, e.g. a layer norm whose mean and '
             'rstd outputs are read'))
    device: torch.device | None = _option(
        None, _check_device, "None (the inputs' device), a GPU index, a torch.device or 'cuda:0'",
        engine=True, converter=_to_device,
        doc=('GPU for the engines: an index, `"cuda:1"` or a `torch.device`; `None` uses the '
             "inputs' device"))
    require_full_compilation: bool = _option(False, _BOOL, "True or False",
        doc=('raise, listing the ops, unless the whole graph converts; blocks of any size are '
             'converted'))
    runtime: str = _option("auto", v.instance_of(str),
                           "'auto', 'tensorrt', 'reference' or a runtime plugin's name",
        doc=('`"tensorrt"`, `"reference"`, or a runtime plugin\'s name; `auto` takes `tensorrt` '
             'where a GPU can run the engines'))
    partitioner: str | None = _option(
        None, v.optional(v.instance_of(str)),
        "None (from use_fast_partitioner), 'fast', 'global' or a partitioner plugin's name",
        doc=('a partitioner by name (`"fast"`, `"global"` or a plugin\'s); overrides '
             '`use_fast_partitioner`'))
    max_dynamic_size: int | None = _option(
        None, [_OPT_INT, v.optional(v.ge(1))],
        "None (sized from the sizes seen, widened by a rebuild when a larger one arrives) or an "
        "int >= 1: the upper bound of the optimization profile for a symbolic size that dynamo "
        "knows no bound for", engine=True,
        doc=('the upper bound of the optimization profile for a symbolic size that dynamo knows no'
             ' bound for (a second prompt length, a tensor `generate()` builds); `None` sizes the '
             'profile from the sizes seen and widens it with a rebuild when a larger one arrives'))
    """Sizes dynamo makes symbolic on its own (a second prompt length) come without an upper
    bound, and a tensor that generate() builds cannot be given one by ``mark_dynamic``: with this,
    one build serves every size up to it."""
    weights: str = _option(
        "frozen", v.in_(("frozen", "inputs")),
        "'frozen' (parameters and buffers become engine constants; changes are noticed, see "
        "plugtrt.weights_changed) or 'inputs' (the engines read them on every call)", engine=True,
        doc=('`"frozen"`: parameters and buffers the graph only reads become engine constants; '
             '`"inputs"`: engines read them on every call'))
    random_ops_in_engines: bool = _option(
        False, _BOOL, "False (random ops run in PyTorch, so torch.manual_seed reproduces them) or "
        "True (in engines, drawing from TensorRT's own generator: not reproducible by a seed)",
        doc=('`False`: random ops (`rand`, `randn`, `bernoulli`, dropout in training mode ...) run'
             " in PyTorch, drawing from torch's generator, so `torch.manual_seed` reproduces a "
             "compiled model's output and gives eager's values; `True`: they go into engines, "
             "through TensorRT's random fill (same distribution, TensorRT's own generator: no seed"
             ' reaches it, so runs differ)'))
    # The engine cache (plugtrt.engine_cache): where engines persist between processes. None of
    # these change an engine, so none is part of its key.
    cache_built_engines: bool = _option(True, _BOOL, "True or False (False: never write the cache)",
        doc='write each engine built into the engine cache')
    reuse_cached_engines: bool = _option(True, _BOOL, "True or False (False: never read the cache)",
        doc='load engines from the engine cache instead of building them')
    engine_cache_dir: str | None = _option(
        None, _check_cache_dir,
        "None ($PLUGTRT_CACHE_DIR, else the user cache directory) or a directory path",
        converter=_to_cache_dir,
        doc=("the engine cache's directory; `None`: `$PLUGTRT_CACHE_DIR`, else the user cache "
             'directory'))
    engine_cache_size: int = _option(5 << 30, _cache_size,
                                     "the cache's size cap in bytes, an int >= 1",
        doc="the engine cache's size cap in bytes; least-recently-used entries go beyond it")
    engine_cache_store: str = _option("local", v.instance_of(str),
                                      "'local' (a directory) or an engine store plugin's name",
        doc='where entries are kept: `"local"` (a directory) or an engine store plugin\'s name')
    progress_bar: bool = _option(True, _BOOL, "True or False",
        doc=("a progress bar (from TensorRT's progress monitor) for engine builds that take more "
             'than 2 s, drawn only when stderr is a terminal; `PLUGTRT_PROGRESS=0` also turns it '
             'off'))
    """Show a progress bar for engine builds that take more than a couple of seconds, when
    stderr is a terminal (``PLUGTRT_PROGRESS=0`` turns it off too)."""

    @property
    def partitioner_name(self) -> str:
        """The partitioner to use: ``partitioner`` if given, else from ``use_fast_partitioner``."""
        if self.partitioner is not None:
            return self.partitioner
        return "fast" if self.use_fast_partitioner else "global"

    @property
    def dry_run(self) -> bool:
        """``min_block_size=inf``: report operator coverage, build nothing, run in PyTorch."""
        return self.min_block_size == math.inf

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> CompilationSettings:
        """Settings from a ``torch.compile`` options dict, or an error a user can act on."""
        options = dict(options or {})
        valid = [f.name for f in attrs.fields(cls)]
        unknown = [key for key in options if key not in valid]
        if unknown:
            lines = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                lines.append(f"  {key!r}{hint}")
            raise InvalidOptionError(
                "unknown plugtrt option(s):\n" + "\n".join(lines)
                + "\nvalid options: " + ", ".join(valid))
        default = cls()
        for key, value in options.items():
            try:
                attrs.evolve(default, **{key: value})
            except (TypeError, ValueError) as exc:
                allowed = attrs.fields_dict(cls)[key].metadata["allowed"]
                # attrs' validators raise with (message, attribute, ...): keep the message
                reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc
                raise InvalidOptionError(
                    f"option {key!r} got {value!r}, which is not allowed ({reason}); use {allowed}"
                ) from None
        settings = attrs.evolve(default, **options)
        if (settings.partitioner is not None and "use_fast_partitioner" in options
                and settings.partitioner != ("fast" if settings.use_fast_partitioner else "global")):
            raise InvalidOptionError(
                f"options partitioner={settings.partitioner!r} and use_fast_partitioner="
                f"{settings.use_fast_partitioner} disagree; give only one of them")
        return settings

    def graph_key(self) -> dict[str, str]:
        """Every setting that can change what a graph compiles to, as strings, for the graph
        cache key: all but where the cache lives and what is shown."""
        return {f.name: _stable_repr(getattr(self, f.name)) for f in attrs.fields(type(self))
                if f.name not in _PRESENTATION}

    def engine_key(self) -> dict[str, str]:
        """The settings that change a built engine, as strings, for the engine cache key."""
        return {f.name: repr(getattr(self, f.name)) for f in attrs.fields(type(self))
                if f.metadata.get("engine")}
