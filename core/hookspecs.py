"""Hook specifications: the whole plugin API of plugtrt.

Registration hooks take no arguments, do no I/O and no TensorRT work, and yield records
from :mod:`plugtrt.records`. The core collects them once per plugin manager, validates
them, and chooses among them from the :class:`~plugtrt.settings.CompilationSettings`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

hookspec = pluggy.HookspecMarker("plugtrt")
hookimpl = pluggy.HookimplMarker("plugtrt")  # re-exported as plugtrt.hookimpl

if TYPE_CHECKING:
    from collections.abc import Iterable

    from plugtrt.records import (
        CommandSpec,
        ConverterSpec,
        DecompositionSpec,
        LayerEvaluatorSpec,
        EngineStoreSpec,
        LoweringPassSpec,
        PartitionerSpec,
        RuntimeSpec,
    )


class PlugtrtSpecs:
    """Every hook a plugtrt plugin may implement."""

    # -- 1. tracing to aten ------------------------------------------------------
    @hookspec
    def plugtrt_decompositions(self) -> Iterable[DecompositionSpec]:
        """Register decompositions: replacements of an op by ops that convert.

        Applied per node: while tracing to ops that no converter is registered for (and to
        records with ``always=True``), then after lowering to each node that every converter
        declines; experimental records only with ``enable_experimental_decompositions``. A
        node that a converter accepts stays whole. ``fn`` may return ``NotImplemented`` to
        decline particular arguments.
        Example::

            @plugtrt.hookimpl
            def plugtrt_decompositions():
                yield DecompositionSpec(name="acme.hardswish", target=aten.hardswish.default,
                                        fn=lambda x: x * (x + 3).clamp(0, 6) / 6)
        """
        yield from ()

    # -- 2. lowering -------------------------------------------------------------
    @hookspec
    def plugtrt_lowering_passes(self) -> Iterable[LoweringPassSpec]:
        """Register passes run on the aten graph before partitioning.

        All registered passes run, sorted by ``(order, name)``. A pass receives the
        ``GraphModule`` and the settings and returns a (possibly new) ``GraphModule``.
        """
        yield from ()

    # -- 3. conversion -----------------------------------------------------------
    @hookspec
    def plugtrt_converters(self) -> Iterable[ConverterSpec]:
        """Register aten -> TensorRT converters.

        Records may share a ``target``; per node the registry tries them by descending
        ``priority`` (then name) and uses the first whose ``is_supported(node, settings)``
        is true (one that raises has declined). Two records for one target at equal priority
        from two plugins clash (the third-party one is skipped with a warning).

        The contract of ``convert(ctx, node, args, kwargs)`` is in :mod:`plugtrt.conversion`:
        ``args`` hold ITensors already in their engine dtype (python values elsewhere, a raw
        empty ``torch.Tensor`` for an empty constant); it returns an ITensor, or a tuple shaped
        like the op's result (None where nobody reads), each of the recorded shape and its engine
        dtype, which the interpreter checks, naming the converter on a mismatch.
        Example::

            @plugtrt.hookimpl
            def plugtrt_converters():
                yield ConverterSpec(name="acme.erf", target=aten.erf.default, convert=convert_erf)
        """
        yield from ()

    # -- 4. partitioning ---------------------------------------------------------
    @hookspec
    def plugtrt_partitioners(self) -> Iterable[PartitionerSpec]:
        """Register partitioners; ``CompilationSettings.partitioner`` selects one by name."""
        yield from ()

    # -- 6. engine cache ---------------------------------------------------------
    @hookspec
    def plugtrt_engine_stores(self) -> Iterable[EngineStoreSpec]:
        """Register engine stores; ``CompilationSettings.engine_cache_store`` selects one by
        name (``"local"``, a directory, is built in).

        The core computes each key, encodes and checksums each entry and verifies it on
        load; a store only keeps bytes under a key (see :class:`plugtrt.engine_cache.EngineStore`).
        Example::

            @plugtrt.hookimpl
            def plugtrt_engine_stores():
                yield EngineStoreSpec(name="redis", create=lambda settings: RedisStore(settings))
        """
        yield from ()

    # -- 7. execution ------------------------------------------------------------
    @hookspec
    def plugtrt_runtimes(self) -> Iterable[RuntimeSpec]:
        """Register runtimes; ``CompilationSettings.runtime`` selects one by name (``auto``
        takes ``tensorrt`` when it is available, else ``reference``)."""
        yield from ()

    @hookspec
    def plugtrt_layer_evaluators(self) -> Iterable[LayerEvaluatorSpec]:
        """Register how the ``reference`` runtime computes a TensorRT layer type.

        The built-in evaluators come from the ``reference`` runtime plugin itself; a package
        that emits other layers (plugin layers, or types the runtime lacks) adds its own.
        Per layer type the highest ``priority`` wins; two plugins at equal priority fail at load.
        Example::

            @plugtrt.hookimpl
            def plugtrt_layer_evaluators():
                yield LayerEvaluatorSpec(name="acme.my_plugin", layer_type="PLUGIN_V3:MyPlugin",
                                         evaluate=lambda layer, inputs, context: [inputs[0] * 2])
        """
        yield from ()

    # -- tools -------------------------------------------------------------------
    @hookspec
    def plugtrt_commands(self) -> Iterable[CommandSpec]:
        """Register ``python -m plugtrt <name>`` subcommands (the ``reference`` runtime adds
        ``conformance``)."""
        yield from ()
