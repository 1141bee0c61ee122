"""First-call compile time of real models, stage by stage, each model in a fresh process.

For every model: the first call's wall time split into dynamo capture, AOT trace, lowering,
support check, partition, conversion, TensorRT's builder, network snapshot and runtime
creation; engines, layers per engine and per layer type; ops left in PyTorch; the peak RSS of
the process; and the same model's first call with ``backend="inductor"`` for comparison.
A fresh process per model, so that no model profits from another's warm caches or imports.

    .venv/bin/python bench/compile_time.py                       # all models
    .venv/bin/python bench/compile_time.py --models resnet50,bert_2l --no-inductor

Prints a table and writes JSON (machine, versions, date) to ``bench/results/``. Weights are
random and nothing is downloaded; engines are built with whichever TensorRT is installed and
evaluated with the ``reference`` runtime, batch 1, float32.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from fresh_process import run_child  # beside this file

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(RESULTS.parents[1]))  # the test models live in tests/models.py
MODELS = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "vit_b_16", "swin_t",
          "convnext_tiny", "bert_2l", "gpt2_2l")
# CompileReport.stage_seconds keys, in pipeline order, and the column each becomes.
STAGES = (("trace", "aot"), ("lower", "lower"), ("support", "support"), ("partition", "part"),
          ("convert", "convert"), ("build", "trt build"), ("snapshot", "snapshot"),
          ("runtime", "runtime"))


def build_model(name: str):
    """``(module, inputs)`` for ``name``: random weights, batch 1, eval mode."""
    import torch

    torch.manual_seed(0)
    if name in ("bert_2l", "gpt2_2l"):
        import transformers

        from tests.models import LastHiddenState

        if name == "bert_2l":
            model = transformers.BertModel(transformers.BertConfig(num_hidden_layers=2))
        else:
            model = transformers.GPT2Model(transformers.GPT2Config(n_layer=2))
        vocab = model.config.vocab_size
        return LastHiddenState(model.eval()).eval(), [torch.randint(0, vocab, (1, 128))]
    import torchvision

    return getattr(torchvision.models, name)(weights=None).eval(), [torch.randn(1, 3, 224, 224)]


def measure_plugtrt(name: str) -> dict:
    """One model through ``backend="plugtrt"`` in this (fresh) process."""
    import torch

    import plugtrt

    model, inputs = build_model(name)
    compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                             options={"runtime": "reference"})
    with torch.no_grad():
        start = time.perf_counter()
        compiled(*inputs)
        first_call = time.perf_counter() - start
        start = time.perf_counter()  # a second call: what running the model costs
        compiled(*inputs)
        second_call = time.perf_counter() - start
    reports = plugtrt.compile_reports()
    stages: Counter[str] = Counter()
    for report in reports:
        stages.update(report.stage_seconds)
    backend_total = stages.pop("total", 0.0)
    engines = [e for r in reports for e in r.engines]
    # The first call also runs the model once (the reference runtime evaluates the network
    # with torch ops): the second call's time, taken out of dynamo's share.
    return {
        "first_call_seconds": first_call,
        "second_call_seconds": second_call,
        "dynamo_seconds": first_call - backend_total - second_call,
        "backend_seconds": backend_total,
        "stage_seconds": dict(stages),
        "plugtrt_own_seconds": backend_total - stages.get("build", 0.0),
        "trt_builder_seconds": stages.get("build", 0.0),
        "engines": [{"name": e.name, "ops": e.ops, "layers": e.layers,
                     "build_seconds": e.build_seconds, "layer_types": e.layer_types}
                    for e in engines],
        "pytorch_ops": dict(Counter(op for r in reports for op in r.pytorch_ops)),
        "fallbacks": [f for r in reports for f in r.fallbacks],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_inductor(name: str) -> dict:
    """The same model's first call with ``backend="inductor"``, for comparison."""
    import torch

    if shutil.which("g++") is None and shutil.which("c++") is None:
        return {"skipped": "inductor needs a C++ compiler on the CPU; none (g++, c++) is on PATH"}
    model, inputs = build_model(name)
    compiled = torch.compile(model, backend="inductor", dynamic=False)
    with torch.no_grad():
        start = time.perf_counter()
        compiled(*inputs)
        first_call = time.perf_counter() - start
    return {"first_call_seconds": first_call,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def versions() -> dict:
    import torch

    from plugtrt import trt_adapter

    found = {"python": platform.python_version(), "torch": torch.__version__}
    trt = trt_adapter.load()
    found[trt_adapter.flavour()] = trt.__version__
    for package in ("torchvision", "transformers"):
        try:
            found[package] = __import__(package).__version__
        except ImportError:
            pass
    return found


def _cell(value: float) -> str:
    return f"{value:.2f}"


def table(results: dict) -> str:
    head = (["model", "first call s", "run", "dynamo"] + [c for _, c in STAGES]
            + ["plugtrt own", "engines", "layers", "top layer types", "torch ops", "RSS MB",
               "inductor s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        p, ind = r["plugtrt"], r.get("inductor", {})
        if "error" in p:
            lines.append(f"| {name} | error: {p['error']} |")
            continue
        types: Counter[str] = Counter()
        for e in p["engines"]:
            types.update(e["layer_types"])
        top = ", ".join(f"{k} {v}" for k, v in types.most_common(4))
        inductor = (_cell(ind["first_call_seconds"]) if "first_call_seconds" in ind
                    else ind.get("skipped") or ind.get("error") or "-")
        row = ([name, _cell(p["first_call_seconds"]), _cell(p["second_call_seconds"]),
                _cell(p["dynamo_seconds"])]
               + [_cell(p["stage_seconds"].get(k, 0.0)) for k, _ in STAGES]
               + [_cell(p["plugtrt_own_seconds"]), str(len(p["engines"])),
                  "+".join(str(e["layers"]) for e in p["engines"]) or "0", top,
                  str(sum(p["pytorch_ops"].values())), f"{p['peak_rss_mb']:.0f}", inductor])
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--no-inductor", action="store_true", help="skip the inductor comparison")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model and backend")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, name, out = args.child
        result = (measure_plugtrt if mode == "plugtrt" else measure_inductor)(name)
        Path(out).write_text(json.dumps(result))
        return
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    results = {}
    for name in names:
        print(f"{name}: plugtrt ...", file=sys.stderr, flush=True)
        results[name] = {"plugtrt": run_child(__file__, ["plugtrt", name], args.timeout)}
        if not args.no_inductor:
            print(f"{name}: inductor ...", file=sys.stderr, flush=True)
            results[name]["inductor"] = run_child(__file__, ["inductor", name], args.timeout)
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    path = RESULTS / f"compile_time-{stamp:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({
        "date": stamp.isoformat(), "machine": {"platform": platform.platform(),
                                               "processor": platform.processor(),
                                               "cpus": __import__("os").cpu_count()},
        "versions": versions(), "batch": 1, "precision": "float32", "runtime": "reference",
        "models": results}, indent=2))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
