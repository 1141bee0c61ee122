"""Stage 6: build a serialized engine from a converted network, with the builder settings.

The result, :class:`EngineArtifact`, is everything a runtime needs and nothing tied to a
live TensorRT object: the plan, the specs of its inputs and outputs, and a snapshot of the
network that the reference runtime evaluates.
"""
from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs

import torch

from plugtrt.errors import EngineBuildError, NetworkRejectedError
from plugtrt.trt_adapter import flavour, trt

logger = logging.getLogger("plugtrt")
trt_logger = logging.getLogger("plugtrt.tensorrt")


@attrs.frozen(kw_only=True)
class BoundarySpec:
    """One engine input or output: the runtime casts ``model_dtype`` <-> ``engine_dtype``."""

    name: str
    shape: tuple[int, ...]
    """TensorRT's dims: -1 where the size is dynamic."""
    model_dtype: torch.dtype
    engine_dtype: torch.dtype
    profiles: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = ()
    """A dynamic input's (min, opt, max) shapes, one per optimization profile of the engine, in
    the profiles' order; () when static."""
    data_dependent: bool = False
    """An output whose size depends on the values computed (``x[mask]``, ``nonzero``): known only
    after execution, so a runtime cannot allocate it beforehand from the input shapes."""


@attrs.frozen(kw_only=True)
class EngineArtifact:
    """A built engine and what its runtimes need to call it."""

    name: str
    plan: Any = attrs.field(repr=lambda p: f"<{memoryview(p).nbytes} bytes>")
    """The serialized engine, a bytes-like buffer: a view of TensorRT's own memory after a build
    (100 MB of ResNet-50 weights are not copied), of the cache entry after a load."""
    inputs: tuple[BoundarySpec, ...]
    outputs: tuple[BoundarySpec, ...]
    network: Any = attrs.field(repr=False)
    """A :class:`plugtrt.network_snapshot.NetworkSnapshot`: the layers, read back from TensorRT;
    None in a cached artifact for a runtime that does not read it."""
    build_seconds: float
    layer_count: int
    layer_types: dict[str, int] = attrs.field(factory=dict)
    """Layers per ``trt.LayerType`` name, for the compile report."""
    profiles: tuple[dict[str, tuple[int, int, int]], ...] = ()
    """Per optimization profile, each symbol's (min, opt, max) by name, for the compile report
    (:func:`plugtrt.dynamic.engine_profiles`); () for an engine with static inputs."""

    def __reduce__(self) -> tuple:
        """Pickled (``torch.save``, ``copy.deepcopy``) with the plan as bytes: a view of
        TensorRT's memory cannot be pickled. The engine cache passes a ``PickleBuffer``
        instead, which pickle protocol 5 writes out of band without a copy."""
        fields = {f.name: getattr(self, f.name) for f in attrs.fields(type(self))}
        if not isinstance(self.plan, (bytes, pickle.PickleBuffer)):
            fields["plan"] = bytes(self.plan)
        return _artifact, (fields,)

    def for_runtime(self, parts: frozenset[str]) -> EngineArtifact:
        """This artifact with only the ``parts`` (``"plan"``, ``"network"``) a runtime reads:
        what the engine cache stores, so an entry does not hold the weights twice."""
        return attrs.evolve(self, plan=pickle.PickleBuffer(self.plan) if "plan" in parts else b"",
                            network=self.network if "network" in parts else None)


def _artifact(fields: dict[str, Any]) -> EngineArtifact:
    return EngineArtifact(**fields)


_LOGGER = None


def tensorrt_logger() -> Any:
    """One TensorRT logger for the process, forwarding to the ``plugtrt.tensorrt`` logging logger
    (``debug=True`` shows its warnings; set that logger to INFO or DEBUG for TensorRT's chatter).

    Its ``errors`` (what a failed build reports), ``muted`` and ``demoted`` (errors collected but
    logged at DEBUG: a build whose failure is retried) flags are per thread: TensorRT
    logs in the thread that called it, so concurrent builds, and a runtime loading a plan in
    another thread, neither mix their errors nor clear each other's."""
    global _LOGGER
    if _LOGGER is None:
        levels = {trt.ILogger.Severity.INTERNAL_ERROR: logging.ERROR,
                  trt.ILogger.Severity.ERROR: logging.ERROR,
                  trt.ILogger.Severity.WARNING: logging.WARNING,
                  trt.ILogger.Severity.INFO: logging.INFO,
                  trt.ILogger.Severity.VERBOSE: logging.DEBUG}

        class ThreadState(threading.local):
            def __init__(self):
                self.errors: list[str] = []
                self.muted = False
                self.demoted = False

        class Forward(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self._state = ThreadState()

            @property
            def errors(self) -> list[str]:
                return self._state.errors

            @property
            def muted(self) -> bool:
                return self._state.muted

            @muted.setter
            def muted(self, value: bool) -> None:
                self._state.muted = value

            @property
            def demoted(self) -> bool:
                return self._state.demoted

            @demoted.setter
            def demoted(self, value: bool) -> None:
                self._state.demoted = value

            def log(self, severity, msg):
                if self.muted:
                    return
                if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                    self.errors.append(msg)
                level = logging.DEBUG if self.demoted else levels.get(severity, logging.INFO)
                trt_logger.log(level, "%s", msg)

        _LOGGER = Forward()
    return _LOGGER


def new_network() -> tuple[Any, Any]:
    """A builder and an empty strongly typed network (RTX networks are always strongly typed)."""
    builder = trt.Builder(tensorrt_logger())
    flags = 0
    if flavour() == "tensorrt":
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return builder, builder.create_network(flags)


def tf32_allowed() -> bool:
    """Whether torch lets float32 matmuls round their inputs to TF32: the user set
    ``torch.backends.cuda.matmul.allow_tf32`` or a ``torch.set_float32_matmul_precision`` other
    than ``"highest"`` (torch keeps the two in step). Engines follow the same choice."""
    return bool(torch.backends.cuda.matmul.allow_tf32) or torch.get_float32_matmul_precision() != "highest"


def builder_config(builder: Any, settings: Any) -> Any:
    """The builder config for ``settings``' engine options."""
    config = builder.create_builder_config()
    if not tf32_allowed():
        # a fresh config has TF32 set: "float32" matmuls and convolutions would run with
        # 10-bit mantissas on a GPU, where torch computes them in float32
        config.clear_flag(trt.BuilderFlag.TF32)
    if settings.workspace_size:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_size)
    if settings.max_aux_streams is not None:
        config.max_aux_streams = settings.max_aux_streams
    if settings.version_compatible:
        if flavour() == "tensorrt_rtx":  # its build step loads full TensorRT's lean runtime
            raise EngineBuildError(
                "version_compatible=True needs full TensorRT's lean runtime (libnvinfer_lean), "
                "which TensorRT-RTX does not ship; install plugtrt[tensorrt] or set "
                "version_compatible=False")
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if settings.optimization_level is not None:
        config.builder_optimization_level = settings.optimization_level
    return config


def _add_profiles(builder: Any, config: Any, inputs: tuple[BoundarySpec, ...]) -> None:
    """The optimization profiles, in order: profile ``k`` gives every dynamic input its ``k``-th
    (min, opt, max)."""
    dynamic = [spec for spec in inputs if spec.profiles]
    for k in range(len(dynamic[0].profiles) if dynamic else 0):
        profile = builder.create_optimization_profile()
        for spec in dynamic:
            profile.set_shape(spec.name, *spec.profiles[k])
        config.add_optimization_profile(profile)


def build(name: str, builder: Any, network: Any, settings: Any,
          inputs: tuple[BoundarySpec, ...], outputs: tuple[BoundarySpec, ...],
          private_arrays: Mapping[int, Any] | None = None,
          profiles: tuple[dict[str, tuple[int, int, int]], ...] = (),
          retried: bool = False) -> EngineArtifact:
    """Build the engine of ``network``; raises :class:`NetworkRejectedError` with TensorRT's
    errors when the builder refuses it, :class:`EngineBuildError` when the settings cannot build.
    ``private_arrays`` (address -> array) are weights of the network that nothing outside
    plugtrt holds: the snapshot keeps them by reference. ``profiles`` name each profile's symbol
    ranges for the report; the builder takes the inputs' own (``BoundarySpec.profiles``). With
    ``retried``, a failure is the caller's to retry: TensorRT's errors go to DEBUG, and into the
    exception."""
    from plugtrt.network_snapshot import snapshot_network
    from plugtrt.progress import monitor

    config = builder_config(builder, settings)
    _add_profiles(builder, config, inputs)
    progress = monitor(name, settings)
    if progress is not None:
        config.progress_monitor = progress  # a bar on the terminal once a build runs > 2 s
    log = tensorrt_logger()
    log.errors.clear()
    log.demoted = retried
    start = time.perf_counter()
    try:
        plan = builder.build_serialized_network(network, config)
    finally:
        log.demoted = False
    seconds = time.perf_counter() - start
    if plan is None:
        raise NetworkRejectedError(f"TensorRT could not build engine {name!r}: "
                               + ("; ".join(log.errors) or "no reason given"))
    logger.debug("engine %s: %d layers built in %.2f s", name, network.num_layers, seconds)
    # reading a layer's static parameters where a shape tensor sets them makes TensorRT log an
    # error ("getReshapeDimensions works only for static reshape dimensions"): expected, muted
    log.muted = True
    try:
        snapshot = snapshot_network(network, private_arrays)
    finally:
        log.muted = False
    return EngineArtifact(name=name, plan=memoryview(plan).cast("B"), inputs=inputs, outputs=outputs,
                          network=snapshot, build_seconds=seconds, layer_count=network.num_layers,
                          layer_types=snapshot.layer_counts(), profiles=profiles)
