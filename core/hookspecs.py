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
        ConverterSpec,
        DecompositionSpec,
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
        """Register decompositions applied while the graph is traced to aten.

        The core builds one table from all records: experimental ones only when
        ``enable_experimental_decompositions`` is set, and an op that a converter accepts
        is left whole unless the record sets ``always=True``.
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
        is true. Two records for one target at equal priority fail at load time.
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
