"""The quick-start demo: torchvision's ResNet-18 (random weights) through ``torch.compile``.

Prints compile time by stage, the engines built, the ops left in PyTorch and the largest
difference from eager, and writes the same as JSON to ``bench/results/demo.json``.
Runs on the CPU (engines built with TensorRT-RTX, evaluated by the reference runtime) or on
a GPU that TensorRT can run.
"""
from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from pathlib import Path

import torch
import torchvision

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    import plugtrt  # only to read the compile reports; the backend is found by name

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    x = torch.randn(2, 3, 224, 224, device=device)
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, backend="plugtrt", dynamic=False, options={"min_block_size": 5})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            got = compiled(x)
            first_call = time.perf_counter() - start
        start = time.perf_counter()
        compiled(x)
        second_call = time.perf_counter() - start
    reports = plugtrt.compile_reports()
    stages: Counter[str] = Counter()
    for report in reports:
        stages.update(report.stage_seconds)
    engines = [e for r in reports for e in r.engines]
    left = Counter(op for r in reports for op in r.pytorch_ops)
    diff = (got - expected).abs().max().item()

    print(f"plugtrt demo: torchvision resnet18, input {tuple(x.shape)}, device {device}")
    for message in {str(w.message) for w in caught}:
        print(f"  note: {message}")
    print(f"\n{'stage':<12}{'seconds':>10}")
    for stage, seconds in stages.items():
        print(f"{stage:<12}{seconds:>10.3f}")
    print(f"{'first call':<12}{first_call:>10.3f}   (dynamo + plugtrt + one run)")
    print(f"{'second call':<12}{second_call:>10.3f}   (cached, no recompilation)")
    restored = [r.graph for r in reports if r.restored]
    if restored:
        print(f"\ngraphs restored from the graph cache (not traced, converted or built): "
              f"{', '.join(restored)}; `python -m plugtrt cache --clear` for a cold compile")
    print(f"\nengines: {len(engines)}")
    for e in engines:
        how = "loaded from the engine cache" if e.cached else f"built in {e.build_seconds:.2f} s"
        print(f"  {e.name}: {e.ops} aten ops -> {e.layers} TensorRT layers, {how}, runtime {e.runtime}")
    print(f"ops left in PyTorch: {sum(left.values())}" + "".join(f"\n  {op} x{n}" for op, n in left.items()))
    print(f"largest |compiled - eager|: {diff:.3g}")

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo.json").write_text(json.dumps({
        "model": "resnet18", "device": device, "stage_seconds": dict(stages),
        "first_call_seconds": first_call, "second_call_seconds": second_call,
        "engines": [{"name": e.name, "ops": e.ops, "layers": e.layers,
                     "build_seconds": e.build_seconds, "runtime": e.runtime} for e in engines],
        "pytorch_ops": dict(left), "max_abs_diff": diff}, indent=2))
    if diff > 1e-3:
        raise SystemExit(f"compiled output differs from eager by {diff}")


if __name__ == "__main__":
    main()
