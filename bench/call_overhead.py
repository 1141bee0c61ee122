"""Microseconds per call that plugtrt's own Python spends around its engines.

The engines are replaced by a runtime plugin registered here, ``null``, whose ``execute``
returns preallocated outputs and does nothing else; what remains of a call is plugtrt's own
work. For models holding about 10, 100 and 1,000 weights (frozen parameters), each call is
split into:

- dispatch: ``CompiledGraph.__call__`` before the partitioned module runs (the weight-change
  check over every frozen weight, the signature lookup);
- graph: the partitioned ``GraphModule`` around its engine modules;
- boundary: ``EngineModule.forward`` around ``execute`` (input casts and contiguity, output
  casts);

plus the whole ``torch.compile``'d call for context (dynamo's guards come on top).

    .venv/bin/python bench/call_overhead.py
"""
from __future__ import annotations

import datetime
import json
import platform
import timeit
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from plugtrt.backend import compile_graph
from plugtrt.hookspecs import hookimpl
from plugtrt.manager import PluginRegistry, load_entry_points, new_plugin_manager
from plugtrt.records import RuntimeSpec
from plugtrt.runtime import EngineModule
from plugtrt.settings import CompilationSettings

RESULTS = Path(__file__).resolve().parent / "results"
CALLS = 2000


class NullEngine(EngineModule):
    """An engine that costs nothing: ``execute`` hands back outputs allocated once."""

    def __init__(self, artifact):
        super().__init__(artifact)
        self.outputs = [torch.empty(s.shape, dtype=s.engine_dtype) for s in artifact.outputs]

    def execute(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.outputs


class NullRuntime:
    @hookimpl
    def plugtrt_runtimes(self) -> Iterator[RuntimeSpec]:
        yield RuntimeSpec(name="null", create=lambda artifact, settings, registry: NullEngine(artifact),
                          available=lambda settings: None)


class Weights(nn.Module):
    """``count`` weights of 16 values each, every one read by one add."""

    def __init__(self, count: int):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(16)) for _ in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = x + w
        return x


def registry() -> PluginRegistry:
    pm = new_plugin_manager()
    load_entry_points(pm, strict=True, distributions=frozenset({"plugtrt"}))
    pm.register(NullRuntime(), name="bench.null_runtime")
    return PluginRegistry(pm)


def per_call_us(fn, *args) -> float:
    fn(*args)
    return min(timeit.repeat(lambda: fn(*args), number=CALLS, repeat=3)) / CALLS * 1e6


def measure(count: int, plugins: PluginRegistry) -> dict:
    settings = CompilationSettings.from_options({"runtime": "null", "progress_bar": False})
    captured = []

    def backend(gm, example_inputs, **_):
        captured.append((compile_graph(gm, example_inputs, settings, plugins), list(example_inputs)))
        return captured[-1][0]

    torch._dynamo.reset()
    model = Weights(count).eval()
    x = torch.randn(4, 16)
    compiled = torch.compile(model, backend=backend, dynamic=False)
    with torch.no_grad():
        compiled(x)
        (graph, args), = captured
        (module,) = [m for m in graph.modules.values() if m is not None]
        (engine,) = [m for m in module.modules() if isinstance(m, EngineModule)]  # x is its input
        user = [a for i, a in enumerate(args) if i not in set(graph.frozen)]
        whole = per_call_us(graph, *args)
        partitioned = per_call_us(module, *user)
        boundary = per_call_us(engine, x)
        end_to_end = per_call_us(compiled, x)
    return {"weights": len(graph.frozen), "engines": 1,
            "dispatch_us": whole - partitioned, "graph_us": partitioned - boundary,
            "boundary_us": boundary, "plugtrt_total_us": whole,
            "torch_compile_call_us": end_to_end}


def main() -> None:
    plugins = registry()
    rows = {count: measure(count, plugins) for count in (10, 100, 1000)}
    head = ["weights", "engines", "dispatch µs", "graph µs", "boundary µs", "plugtrt total µs",
            "torch.compile call µs"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows.values():
        print(f"| {r['weights']} | {r['engines']} | {r['dispatch_us']:.1f} | {r['graph_us']:.1f} | "
              f"{r['boundary_us']:.1f} | {r['plugtrt_total_us']:.1f} | {r['torch_compile_call_us']:.1f} |")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    path = RESULTS / f"call_overhead-{stamp:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"date": stamp.isoformat(), "platform": platform.platform(),
                                "torch": torch.__version__, "calls": CALLS,
                                "models": list(rows.values())}, indent=2))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
