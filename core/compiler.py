"""Stages 2-7 on one traced aten graph: lower, check support, partition, convert, build, wrap.

A block that fails to convert or build is bisected until only the ops that fail stay in
PyTorch, with a warning naming them, their source lines and the reason
(``pass_through_build_failures=True`` raises instead).
"""
from __future__ import annotations

import bisect
import logging
import operator
import time
from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torch.fx

from plugtrt import engine as engine_mod
from plugtrt import trt_adapter
from plugtrt.bisection import split_in_half
from plugtrt.blocks import block_size, tensorrt_blocks
from plugtrt.conversion import describe
from plugtrt.decompositions import decompose_declined
from plugtrt.dynamic import by_name, unbacked_bounds
from plugtrt.engine_cache import open_cache
from plugtrt.engine_key import EngineKey, engine_key
from plugtrt.errors import ConversionError, NetworkRejectedError, PlugtrtError, warn_user
from plugtrt.interpreter import NetworkInterpreter
from plugtrt.precision import mark_float32
from plugtrt.report import CompileReport, EngineReport
from plugtrt.runtimes_select import select_runtime
from plugtrt.support import SupportCheck, coverage, format_coverage

logger = logging.getLogger("plugtrt")


class _Timer:
    def __init__(self, report: CompileReport, stage: str):
        self.report, self.stage = report, stage

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.report.stage_seconds[self.stage] = (
            self.report.stage_seconds.get(self.stage, 0.0) + time.perf_counter() - self.start)


def lower(gm: torch.fx.GraphModule, registry: Any, settings: Any) -> torch.fx.GraphModule:
    """Run every lowering pass, in ``(order, name)`` order, then drop dead code they left."""
    for reg in registry.lowering_passes:
        try:
            result = reg.record.fn(gm, settings)
        except Exception as exc:
            raise PlugtrtError(f"lowering pass {reg.record.name!r} of plugin {reg.plugin!r} failed: "
                               f"{exc!r}") from exc
        if not isinstance(result, torch.fx.GraphModule):
            raise PlugtrtError(f"lowering pass {reg.record.name!r} of plugin {reg.plugin!r} returned "
                               f"{type(result).__name__}; a pass must return a GraphModule")
        gm = result
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    return gm


def compile_aten(gm: torch.fx.GraphModule, registry: Any, settings: Any, report: CompileReport,
                 bounds: Mapping[Any, tuple[int, int, int]] | None = None) -> torch.fx.GraphModule | None:
    """The partitioned module with TensorRT blocks replaced by runtime modules; ``bounds`` give
    each symbolic size its (min, opt, max) for the engines' optimization profiles.

    Returns None for a dry run (``min_block_size=inf``), after recording the coverage.
    """
    outside = _outside_memory(gm)
    with _Timer(report, "lower"):
        gm = decompose_declined(lower(gm, registry, settings), registry, settings)
        mark_float32(gm, settings.precision)
    logger.debug("lowered graph of %s:\n%s", report.graph, gm.code)
    check = SupportCheck(registry, settings)
    with _Timer(report, "support"):
        report.coverage = coverage(gm, check)
    if settings.dry_run:
        report.dry_run = True
        text = format_coverage(report.coverage, report.graph)
        if settings.debug:  # what the user asked to see: printed once, not logged beside it
            print(text)
        else:
            logger.info("%s", text)
        return None
    if settings.require_full_compilation and report.coverage["unsupported"]:
        raise ConversionError(
            "require_full_compilation=True, but these ops cannot run in TensorRT:\n"
            + format_coverage(report.coverage, report.graph).split("\n", 1)[1]
            + "\nRemove them from torch_executed_ops, install a converter plugin for them, "
            "or set require_full_compilation=False.")
    partitioner = registry.pick("partitioner", settings.partitioner_name)
    block_settings = attrs.evolve(settings, min_block_size=1) if settings.require_full_compilation \
        else settings
    with _Timer(report, "partition"):
        parted = partitioner.record.partition(gm, check, block_settings)
    blocks = tensorrt_blocks(parted)
    if blocks:
        trt_adapter.load()  # a missing TensorRT is the user's to fix, not a block to fall back
        with _Timer(report, "cache"):
            cache = open_cache(registry, settings)
        context = _Blocks(registry, settings, select_runtime(registry, settings), report, bounds,
                          outside, cache)
    for block in blocks:
        _replace_block(parted, block, context)
    parted.graph.lint()
    parted.recompile()
    _record_pytorch_ops(parted, report)
    logger.debug("partitioned graph of %s:\n%s", report.graph, parted.code)
    return parted


@attrs.frozen
class _Blocks:
    """What every TensorRT block of one graph, and every piece of one, is converted and built
    with."""

    registry: Any
    settings: Any
    runtime: Any
    report: CompileReport
    bounds: Mapping[Any, tuple[int, int, int]] | None
    outside: list[tuple[int, int]]
    cache: Any


def _replace_block(parted: torch.fx.GraphModule, block: torch.fx.Node, blocks: _Blocks) -> None:
    """Replace ``block`` with an engine; where it fails to convert or build, with the engines of
    its parts and the ops that failed, with one warning naming those ops, their source lines
    and the error (``pass_through_build_failures=True`` raises at the first failure instead).

    A block that TensorRT refuses or a converter cannot convert is bisected
    (:mod:`plugtrt.bisection`): each half is tried as a block again, recursively, so only the
    failing ops themselves run in PyTorch, at a cost of about ``2 * log2(ops)`` extra attempts per
    failing op. A part that builds keeps its engine even when it has fewer ops than
    ``min_block_size``: the failure has already cut the block there, and sending a part that
    built to PyTorch would leave more ops out of TensorRT than TensorRT refused. Failures are
    remembered in the engine cache, so a later compile splits at once without trying again.
    Any other failure (the runtime cannot load the engine) costs its block or piece whole.
    """
    sub = parted.get_submodule(block.target)
    where, engines = f"block {block.target} ({_first_op(sub)})", len(blocks.report.engines)
    failed: list[tuple[torch.fx.GraphModule, str]] = []
    _place(parted, block, block.target, blocks, failed)
    if not failed:
        return
    hint = "Set pass_through_build_failures=True to raise instead."
    if failed[0][0] is sub:
        message = f"plugtrt: {where} runs in PyTorch instead: {failed[0][1]}. {hint}"
    else:
        message = "\n".join([
            f"plugtrt: {where} did not build whole; bisected, it runs in "
            f"{len(blocks.report.engines) - engines} engine(s) and these ops run in PyTorch instead:",
            *(f"  - {_ops_of(piece)}: {reason}" for piece, reason in failed), hint])
    warn_user(message)
    blocks.report.fallbacks.append(message)


def _place(owner: torch.fx.GraphModule, node: torch.fx.Node, path: str, blocks: _Blocks,
           failed: list[tuple[torch.fx.GraphModule, str]]) -> None:
    """Replace the block ``node`` calls in ``owner`` (``path`` from the partitioned module) with
    its engine, else split it and place each half; append each piece left in PyTorch, with
    why, to ``failed``."""
    sub = owner.get_submodule(node.target)
    try:
        module, key, artifact, converters = _engine(sub, path, blocks)
    except Exception as exc:
        if blocks.settings.pass_through_build_failures:
            raise
        halves = split_in_half(sub) if isinstance(exc, (ConversionError, NetworkRejectedError)) else None
        if halves is None:
            failed.append((sub, str(exc) if isinstance(exc, PlugtrtError) else repr(exc)))
            return
        logger.debug("%s.%s failed; bisecting it: %s", blocks.report.graph, path, exc)
        for half in halves:
            _place(sub, half, f"{path}.{half.target}", blocks, failed)
        sub.graph.lint()
        sub.recompile()
        return
    module = ContainedEngine(module, sub, path, f"block {path} ({_first_op(sub)})", blocks.settings,
                             blocks.report, cache_key=key)
    owner.add_submodule(node.target, module)
    ops = block_size(sub.graph.nodes)
    name = f"{blocks.report.graph}.{path}"
    cached = converters is None
    blocks.report.engines.append(EngineReport(
        name=name, layers=artifact.layer_count, ops=ops, build_seconds=artifact.build_seconds,
        runtime=blocks.runtime.record.name, layer_types=artifact.layer_types,
        converters=key.converters if cached else converters, cached=cached, profiles=artifact.profiles,
        plan_bytes=memoryview(artifact.plan).nbytes if artifact.plan is not None else 0))
    logger.debug("engine %s: %d ops -> %d layers, %s, runtime %s", name, ops, artifact.layer_count,
                 "from the engine cache" if cached else f"built in {artifact.build_seconds:.2f} s",
                 blocks.runtime.record.name)
    if len(artifact.outputs) == 1 and not _returns_tuple(sub):
        with owner.graph.inserting_after(node):
            first = owner.graph.call_function(operator.getitem, (node, 0))
        node.replace_all_uses_with(first, delete_user_cb=lambda user: user is not first)
        first.meta["val"] = next(n for n in sub.graph.nodes if n.op == "output").args[0].meta.get("val")


def _engine(sub: torch.fx.GraphModule, path: str, blocks: _Blocks
            ) -> tuple[torch.nn.Module, EngineKey | None, Any, tuple[str, ...] | None]:
    """The runtime module of ``sub``'s engine, its cache key, the artifact and the converters
    that built it (None when it came from the engine cache). A failure the cache remembers for
    ``sub`` is raised again without converting or building; a new failure to convert or build
    is remembered."""
    report, settings, cache = blocks.report, blocks.settings, blocks.cache
    name = f"{report.graph}.{path}"
    with _Timer(report, "cache"):  # a hit skips conversion and the build
        bounds = _block_bounds(sub, blocks.bounds)
        key = engine_key(sub, blocks.registry, settings, bounds,
                         runtime=blocks.runtime.record.name) if cache is not None else None
        artifact = cache.load(key, name) if key is not None else None
        remembered = cache.load_failure(key) if key is not None and artifact is None else None
    if remembered is not None:
        raise NetworkRejectedError(f"{remembered} (remembered by the engine cache: not tried again)")
    converters = None
    if artifact is None:
        try:
            artifact, converters = _build(sub, name, blocks, bounds)
        except (ConversionError, NetworkRejectedError) as exc:
            if key is not None:
                cache.save_failure(key, str(exc))
            raise
        if key is not None:
            with _Timer(report, "cache"):
                cache.save(key, artifact.for_runtime(blocks.runtime.record.reads))
    with _Timer(report, "runtime"):
        module = blocks.runtime.record.create(artifact, settings, blocks.registry)
    return module, key, artifact, converters


def _block_bounds(sub: torch.fx.GraphModule, bounds: Mapping[Any, tuple[int, int, int]] | None
                  ) -> Mapping[Any, tuple[int, int, int]] | None:
    """``bounds`` with a profile range for each data-dependent size among ``sub``'s inputs (the
    length of an ``x[mask]`` that PyTorch computed before this block)."""
    extra = unbacked_bounds([n.meta.get("val") for n in sub.graph.nodes if n.op == "placeholder"])
    return {**(bounds or {}), **extra} if extra else bounds


def _build(sub: torch.fx.GraphModule, name: str, blocks: _Blocks,
           bounds: Mapping[Any, tuple[int, int, int]] | None,
           split: bool = True) -> tuple[Any, tuple[str, ...]]:
    """Convert ``sub`` and build its engine: the artifact and the converters used. Where TensorRT
    refuses an engine with several optimization profiles (it checks the network's shape
    constraints at each profile's opt, which the model may not take), it is built again with
    one profile over the whole range, as the call's sizes always build."""
    report, settings = blocks.report, blocks.settings
    with _Timer(report, "convert"):
        builder, network = engine_mod.new_network()
        interpreter = NetworkInterpreter(sub, blocks.registry, settings, network)
        inputs, outputs = interpreter.run(
            [n.meta["val"] for n in sub.graph.nodes if n.op == "placeholder"], bounds, split)
    start = time.perf_counter()
    try:
        artifact = engine_mod.build(name, builder, network, settings, tuple(inputs), tuple(outputs),
                                    _private(interpreter.ctx.weight_arrays(), blocks.outside),
                                    profiles=by_name(interpreter.profiles),
                                    retried=len(interpreter.profiles) > 1)
    except NetworkRejectedError as exc:
        if len(interpreter.profiles) < 2:
            raise
        logger.debug("engine %s: TensorRT refused its %d optimization profiles (%s); building it "
                     "with one over the whole range", name, len(interpreter.profiles), exc)
        return _build(sub, name, blocks, bounds, split=False)
    # "build" is TensorRT's builder alone; reading the network back is "snapshot"
    for stage, seconds in (("build", artifact.build_seconds),
                           ("snapshot", time.perf_counter() - start - artifact.build_seconds)):
        report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + seconds
    return artifact, tuple(sorted(interpreter.converters_used))


def _outside_memory(gm: torch.fx.GraphModule) -> list[tuple[int, int]]:
    """Sorted, merged (start, end) address ranges of the CPU tensors the traced graph holds: the
    model's weights and constants, which the model may still change. Tensors that lowering and
    conversion make later are plugtrt's own."""
    ranges = []
    for node in gm.graph.nodes:
        value = operator.attrgetter(node.target)(gm) if node.op == "get_attr" else None
        if isinstance(value, torch.Tensor) and value.device.type == "cpu":
            storage = value.untyped_storage()
            ranges.append((storage.data_ptr(), storage.data_ptr() + storage.nbytes()))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _private(arrays: Mapping[int, Any], outside: list[tuple[int, int]]) -> dict[int, Any]:
    """The weight arrays of a conversion that lie outside the model's memory: the network
    snapshot keeps these by reference, and copies the rest (a weight converted as-is is the
    model's own memory, which may change after compiling)."""
    starts = [start for start, _ in outside]
    private = {}
    for address, array in arrays.items():
        i = bisect.bisect_right(starts, address) - 1
        if i < 0 or address >= outside[i][1]:
            private[address] = array
    return private


class EngineFailedWithoutBlock(Exception):
    """A restored engine (:mod:`plugtrt.graph_cache`) failed at run time, and has no PyTorch
    block to run instead: its caller runs the whole graph in PyTorch."""


class ContainedEngine(torch.nn.Module):
    """An engine's runtime module with its PyTorch block behind it: when the engine fails at run
    time, that call and every later one run the block in PyTorch, with one warning (recorded in
    the compile report), instead of failing the model (``pass_through_build_failures`` raises).
    An engine restored from the graph cache has no block (``block`` is None): it raises
    :class:`EngineFailedWithoutBlock` after the warning instead."""

    def __init__(self, engine: torch.nn.Module, block: torch.fx.GraphModule | None, target: str,
                 where: str, settings: Any, report: CompileReport, cache_key: EngineKey | None = None):
        super().__init__()
        self.engine, self.block = engine, block
        self.target, self.where, self.cache_key = target, where, cache_key
        """The block's name in the partitioned module; its description for messages; the key
        its engine is cached under (None when it is not)."""
        self._raise, self._report = settings.pass_through_build_failures, report
        self.failure: str | None = None

    def forward(self, *inputs: Any) -> tuple:
        if self.failure is None:
            try:  # sizes computed in PyTorch reach the block as ints; the engine recomputes them
                return self.engine(*(x for x in inputs if isinstance(x, torch.Tensor)))
            except Exception as exc:
                if self._raise:
                    raise
                instead = "" if self.block is not None else "the whole graph "
                self.failure = (f"plugtrt: {self.where} failed at run time and {instead}runs in PyTorch "
                                f"from now on: {exc!r}. Set pass_through_build_failures=True to raise "
                                "instead.")
                warn_user(self.failure)
                self._report.fallbacks.append(self.failure)
        if self.block is None:
            raise EngineFailedWithoutBlock(self.failure)
        result = self.block(*inputs)
        return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _returns_tuple(sub: torch.fx.GraphModule) -> bool:
    output = next(n for n in sub.graph.nodes if n.op == "output")
    return isinstance(output.args[0], (tuple, list))


def _first_op(sub: torch.fx.GraphModule) -> str:
    node = next((n for n in sub.graph.nodes if n.op == "call_function"), None)
    return f"starting at {describe(node)}" if node is not None else "empty"


def _ops_of(piece: torch.fx.GraphModule) -> str:
    """How a warning names the ops of a piece left in PyTorch: the op itself when it is one."""
    ops = [n for n in piece.graph.nodes if block_size([n])]
    return describe(ops[0]) if len(ops) == 1 else f"{len(ops)} ops {_first_op(piece)}"


def _record_pytorch_ops(gm: torch.fx.GraphModule, report: CompileReport) -> None:
    """Every op of ``gm`` that runs in PyTorch: its own, and those of the PyTorch blocks and
    bisected blocks it calls (an engine's block runs only if the engine fails)."""
    for node in gm.graph.nodes:
        if node.op == "call_function" and block_size([node]):
            report.pytorch_ops.append(str(node.target))
        elif node.op == "call_module":
            sub = gm.get_submodule(node.target)
            if isinstance(sub, torch.fx.GraphModule):
                _record_pytorch_ops(sub, report)
