"""Stage 7's choice: which runtime plugin wraps the engines (``runtime`` option)."""
from __future__ import annotations

import warnings
from typing import Any

from plugtrt.errors import PlugtrtError

_warned: set[str] = set()


def select_runtime(registry: Any, settings: Any) -> Any:
    """The runtime ``settings.runtime`` names; ``auto`` prefers ``tensorrt`` and falls back to
    ``reference`` with one warning per process and reason."""
    if settings.runtime != "auto":
        chosen = registry.pick("runtime", settings.runtime)
        reason = chosen.record.available(settings)
        if reason is not None:
            raise PlugtrtError(f"runtime {settings.runtime!r} (plugin {chosen.plugin!r}) cannot run here: "
                               f"{reason.rstrip('.')}. Use runtime='reference' or runtime='auto'.")
        return chosen
    tensorrt = registry.runtimes.get("tensorrt")
    reason = tensorrt.record.available(settings) if tensorrt else "no 'tensorrt' runtime is registered"
    if reason is None:
        return tensorrt
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"plugtrt: engines are built, but evaluated by the 'reference' runtime (torch ops, "
                      f"not TensorRT kernels) because {reason.rstrip('.')}. "
                      "Set runtime='reference' to silence this.", stacklevel=3)
    return registry.pick("runtime", "reference")
