"""What only a GPU shows, without TensorRT on the GPU machine.

TensorRT-RTX builds engines here (CPU) but cannot run them on Hopper, and the GPU machine has
no TensorRT at all. So ``prepare`` compiles models here with the ``reference`` runtime and
saves the partitioned modules (engine snapshots included) with eager results; ``check``, on
the GPU machine, moves them to CUDA and compares with the eager model on CUDA, then runs the
parts of the pipeline that need no TensorRT (tracing, lowering, support, partitioning: the
coverage dry run) through ``torch.compile`` on CUDA tensors with that machine's torch.
Prints a table and writes JSON.

    python bench/device_check.py prepare DIR   # here
    python bench/device_check.py check DIR     # on the GPU machine
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models import SeedModel, mlp, small_cnn  # noqa: E402


def _models():
    import torchvision

    torch.manual_seed(0)
    yield "mlp", mlp, [(8, 16)]
    yield "small_cnn", small_cnn, [(2, 3, 32, 32)]
    yield "seed", lambda: SeedModel().eval(), [(5, 7)] * 3
    yield "squeezenet1_1", lambda: torchvision.models.squeezenet1_1(weights=None).eval(), [(1, 3, 64, 64)]


def prepare(out: Path) -> None:
    from plugtrt.backend import compile_graph
    from plugtrt.settings import CompilationSettings

    out.mkdir(parents=True, exist_ok=True)
    for name, make, shapes in _models():
        for precision in (torch.float32, torch.float16):
            torch.manual_seed(0)
            model = make()
            inputs = [torch.randn(s) for s in shapes]
            settings = CompilationSettings.from_options(
                {"runtime": "reference", "min_block_size": 1, "precision": precision})
            captured = []

            def backend(gm, example_inputs, **_):
                captured.append(compile_graph(gm, example_inputs, settings))
                return captured[-1]

            with torch.no_grad():
                torch._dynamo.reset()
                torch.compile(model, backend=backend, dynamic=False)(*inputs)
            modules = [m for c in captured for m in c.modules.values()]
            torch.save({"name": name, "precision": str(precision), "modules": modules,
                        "state_dict": model.state_dict(), "inputs": inputs},
                       out / f"{name}-{str(precision).removeprefix('torch.')}.pt")
            print(f"prepared {name} {precision}: {len(modules)} graph(s)")
    for name, make, shapes, top in _dynamic_models():
        torch.manual_seed(0)
        model = make()
        settings = CompilationSettings.from_options({"runtime": "reference", "min_block_size": 1})
        captured = []

        def backend(gm, example_inputs, **_):
            captured.append(compile_graph(gm, example_inputs, settings))
            return captured[-1]

        x = torch.randn(shapes[0])
        torch._dynamo.mark_dynamic(x, 0, min=2, max=top)
        with torch.no_grad():
            torch._dynamo.reset()
            torch.compile(model, backend=backend)(x)
        modules = [m for c in captured for m in c.modules.values()]
        sizes = [2, 3, top // 2, top]
        torch.save({"name": name, "precision": "torch.float32 dynamic", "modules": modules,
                    "state_dict": model.state_dict(),
                    "inputs": [torch.randn((n, *shapes[0][1:])) for n in sizes]},
                   out / f"{name}-dynamic.pt")
        print(f"prepared {name} dynamic (batch 2..{top}): {len(modules)} graph(s)")


def _dynamic_models():
    """Models compiled once for a range of batch sizes (one engine, an optimization profile)."""
    yield "mlp", mlp, [(8, 16)], 64
    yield "small_cnn", small_cnn, [(4, 3, 32, 32)], 15  # dynamo's CPU guard on a conv's batch


def check(out: Path) -> int:
    rows = []
    makers = {name: (make, shapes) for name, make, shapes in _models()}
    for path in sorted(out.glob("*.pt")):
        saved = torch.load(path, weights_only=False)
        make, _ = makers[saved["name"]]
        model = make().cuda()
        model.load_state_dict(saved["state_dict"])
        (module,) = saved["modules"]
        module = module.cuda()
        if "dynamic" in saved["precision"]:  # one engine, called at every batch size saved
            rows.append(_check_dynamic(path.stem, model, module, saved["inputs"]))
            continue
        inputs = [x.cuda() for x in saved["inputs"]]
        with torch.no_grad():
            want = model(*inputs)
            start = time.perf_counter()
            got = module(*inputs)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        diff = max((g.float() - w.float()).abs().max().item() for g, w in zip(got, want))
        devices = sorted({str(g.device) for g in got})
        dtypes_ok = all(g.dtype == w.dtype for g, w in zip(got, want))
        limit = 1e-3 if "float32" in saved["precision"] else 5e-2
        ok = diff <= limit and dtypes_ok and devices == ["cuda:0"]
        rows.append({"case": path.stem, "max_abs_diff": diff, "devices": devices, "dtypes_match": dtypes_ok,
                     "first_call_seconds": seconds, "ok": ok})
    rows.extend(_dry_runs())
    rows.extend(_dynamic_dry_runs())
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    for row in rows:
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    (out / "device_check.json").write_text(json.dumps(rows, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


def _check_dynamic(case: str, model, module, inputs) -> dict:
    diffs = []
    with torch.no_grad():
        for x in inputs:
            got, want = module(x.cuda()), model(x.cuda())
            got = got[0] if isinstance(got, (tuple, list)) else got
            diffs.append((got - want).abs().max().item())
    return {"case": case, "batches": [x.shape[0] for x in inputs], "max_abs_diff": max(diffs),
            "ok": max(diffs) <= 1e-3}


def _dynamic_dry_runs() -> list[dict]:
    """torch.compile(dynamic=True) on CUDA with the coverage dry run: the symbolic trace, the
    support check and partitioning with this machine's torch, compiled once for all sizes."""
    import plugtrt

    rows = []
    for name, make, shapes, _ in _dynamic_models():
        model = make().cuda()
        torch._dynamo.reset()
        start = plugtrt.compile_count()
        compiled = torch.compile(model, backend="plugtrt", dynamic=True,
                                 options={"min_block_size": math.inf})
        same = True
        with torch.no_grad():
            for batch in (3, 5, 9):
                x = torch.randn((batch, *shapes[0][1:]), device="cuda")
                same = same and torch.equal(compiled(x), model(x))
        reports = plugtrt.compile_reports()[-(plugtrt.compile_count() - start):]
        # dynamo may specialise the first graph itself (torch 2.11 guards a CUDA conv's batch on
        # its first trace); each dynamo graph must then compile once
        graphs = [r.graph.rsplit(".", 1)[0] for r in reports]
        rows.append({"case": f"dynamic dry-run {name}", "dynamo_graphs": len(set(graphs)),
                     "compiles": len(graphs), "equal_to_eager": same,
                     "ok": same and len(graphs) == len(set(graphs)) <= 2})
    return rows


def _dry_runs() -> list[dict]:
    """torch.compile on CUDA with the coverage dry run: tracing to partitioning, no TensorRT."""
    import plugtrt

    rows = []
    for name, make, shapes in _models():
        model = make().cuda()
        inputs = [torch.randn(s, device="cuda") for s in shapes]
        torch._dynamo.reset()
        with torch.no_grad():
            got = torch.compile(model, backend="plugtrt", dynamic=False,
                                options={"min_block_size": math.inf})(*inputs)
            want = model(*inputs)
        report = plugtrt.compile_reports()[-1]
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        same = all(torch.equal(g, w) for g, w in zip(got, want))
        cov = report.coverage
        rows.append({"case": f"dry-run {name}", "ops": cov["total"], "supported": cov["supported"],
                     "unsupported": sorted(cov["unsupported"]), "equal_to_eager": same,
                     "ok": same and report.dry_run})
    return rows


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    sys.exit(prepare(folder) if command == "prepare" else check(folder))
