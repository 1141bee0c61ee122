"""Stage 7's choice: which runtime plugin wraps the engines (``runtime`` option)."""
from __future__ import annotations

from typing import Any

from plugtrt.errors import PlugtrtError, warn_user

_warned: set[str] = set()


def select_runtime(registry: Any, settings: Any) -> Any:
    """The runtime ``settings.runtime`` names; ``auto`` prefers ``tensorrt`` and falls back to
    ``reference`` (:func:`warn_reference_runtime` tells the user, once engines exist)."""
    if settings.runtime != "auto":
        chosen = registry.pick("runtime", settings.runtime)
        reason = chosen.record.available(settings)
        if reason is not None:
            raise PlugtrtError(f"runtime {settings.runtime!r} (plugin {chosen.plugin!r}) cannot run here: "
                               f"{reason.rstrip('.')}. Use runtime='reference' or runtime='auto'.")
        return chosen
    tensorrt = registry.runtimes.get("tensorrt")
    return tensorrt if _unavailable(tensorrt, settings) is None else registry.pick("runtime", "reference")


def _unavailable(tensorrt: Any, settings: Any) -> str | None:
    return tensorrt.record.available(settings) if tensorrt else "no 'tensorrt' runtime is registered"


def warn_reference_runtime(registry: Any, settings: Any, report: Any) -> None:
    """One warning per process and reason when ``runtime='auto'`` put engines of ``report`` on
    the ``reference`` runtime; nothing for a graph that built none (that warning would be
    false there: a graph without engines says why itself)."""
    if settings.runtime != "auto" or not any(e.runtime == "reference" for e in report.engines):
        return
    reason = _unavailable(registry.runtimes.get("tensorrt"), settings)
    if reason is not None and reason not in _warned:
        _warned.add(reason)
        warn_user(f"plugtrt: engines are built, but evaluated by the 'reference' runtime (torch ops, "
                  f"not TensorRT kernels) because {reason.rstrip('.')}. "
                  "Set runtime='reference' to silence this.")
