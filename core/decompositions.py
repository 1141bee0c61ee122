"""The decomposition table used while tracing, built from the plugins' records."""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("plugtrt")


def decomposition_table(registry: Any, settings: Any) -> dict[Any, Any]:
    """``{OpOverload: fn}``: experimental records only when enabled, and an op that a converter
    handles whole is left alone unless its record sets ``always``."""
    table = {}
    for reg in registry.decompositions:
        record = reg.record
        if record.experimental and not settings.enable_experimental_decompositions:
            continue
        if record.target in registry.converters and not record.always:
            logger.debug("not decomposing %s: a converter handles it", record.target)
            continue
        table[record.target] = record.fn
    return table
