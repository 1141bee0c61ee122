"""Engine cache benchmark: ResNet-50 and a 2-layer BERT (or any model of
``bench/compile_time.py``) compiled cold and warm, each in a fresh process, sharing one cache
directory; the warm compile must restore every graph and match eager.

"plugtrt s" is plugtrt's own time after dynamo hands over the graph (the sum of every compile
report's ``total``: on a cold cache tracing to aten, lowering, partitioning, keys, conversion,
build and runtime; on a warm one the graph's key and restoring its module from the graph
cache, engines loaded from the engine cache); "first call s" is the whole first call, dynamo
included. A warm plugtrt time must be
at most 10% of the cold one. Prints a table and writes ``bench/results/cache.json``.

    .venv/bin/python bench/cache.py [--models resnet50 bert_2l swin_t ...] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = ("resnet50", "bert_2l")


def child(name: str) -> dict:
    """One compile in this (fresh) process; the cache directory comes from PLUGTRT_CACHE_DIR."""
    import warnings

    import torch

    import plugtrt

    warnings.simplefilter("ignore")
    from compile_time import build_model  # beside this file

    model, inputs = build_model(name)
    with torch.no_grad():
        expected = model(*inputs)
        compiled = torch.compile(model, backend="plugtrt", dynamic=False,
                                 options={"runtime": "reference", "min_block_size": 5})
        start = time.perf_counter()
        got = compiled(*inputs)
        first_call = time.perf_counter() - start
    reports = plugtrt.compile_reports()
    stages: dict[str, float] = {}
    for report in reports:
        for stage, seconds in report.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    engines = [e for r in reports for e in r.engines]
    return {"plugtrt_seconds": stages.get("total", 0.0), "first_call_seconds": first_call,
            "stages": stages, "engines": len(engines), "cached": sum(e.cached for e in engines),
            "restored": all(r.restored for r in reports),
            "fallbacks": sum(len(r.fallbacks) for r in reports),
            "max_abs_diff": (got - expected).abs().max().item()}


def _run(name: str, cache: str) -> dict:
    env = {**os.environ, "PLUGTRT_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from compile_time import MODELS

    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(DEFAULT_MODELS))
    parser.add_argument("--repeat", type=int, default=1, help="cold/warm pairs per model")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    rows = []
    for name in args.models:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="plugtrt-bench-cache-") as cache:
                cold, warm = _run(name, cache), _run(name, cache)
                size = sum(p.stat().st_size for p in Path(cache).glob("*.engine"))
            rows.append({"model": name, "cold": cold, "warm": warm, "cache_bytes": size,
                         "ratio": warm["plugtrt_seconds"] / cold["plugtrt_seconds"]})
    header = (f"{'model':<18} {'engines':>7} {'cold plugtrt s':>14} {'warm plugtrt s':>14} {'warm/cold':>9} "
              f"{'cold 1st call s':>15} {'warm 1st call s':>15} {'cache MB':>8} {'max |cold - eager|':>18} "
              f"{'max |warm - eager|':>18}")
    print(header)
    for row in rows:
        cold, warm = row["cold"], row["warm"]
        print(f"{row['model']:<18} {cold['engines']:>7} {cold['plugtrt_seconds']:>14.2f} "
              f"{warm['plugtrt_seconds']:>14.2f} {row['ratio']:>9.1%} {cold['first_call_seconds']:>15.2f} "
              f"{warm['first_call_seconds']:>15.2f} {row['cache_bytes'] / 1e6:>8.1f} "
              f"{cold['max_abs_diff']:>18.3g} {warm['max_abs_diff']:>18.3g}")
    for row in rows:
        stages = ", ".join(f"{k} {row['warm']['stages'][k]:.2f}" for k in row["warm"]["stages"])
        print(f"  {row['model']} warm stages (s): {stages}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cache.json").write_text(json.dumps(rows, indent=2))
    # a restored module computes exactly what the compiled one did: the same engines, same inputs
    failed = [r["model"] for r in rows
              if r["ratio"] > 0.10 or r["warm"]["cached"] != r["warm"]["engines"] or r["cold"]["cached"]
              or not r["warm"]["restored"] or r["warm"]["max_abs_diff"] != r["cold"]["max_abs_diff"]]
    if failed:
        print(f"FAILED: warm is not restored and cached, differs from cold, or is above 10% of cold, "
              f"for {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
