"""Decoder LLMs through ``generate()``: tiny random-weight Llama, Mistral, Qwen2, Gemma and
Phi-3 (``transformers`` configs, nothing downloaded), ``model.forward`` compiled by plugtrt,
greedy decoding with a static KV cache, each model in a fresh process with an empty engine
cache (cold builds).

Per model: engines and layers per graph (prefill, decode), TensorRT's build seconds, ops left
in PyTorch per graph, the first prefill call's and the first decode call's seconds (compile
included), the compiles during ``generate()`` and whether the greedy tokens equal eager's.
``--prompt-lengths 8,20,100,512`` adds a second table: one ``StaticCache`` reused (``reset()``)
across prompts of those lengths, ``forward`` compiled with torch.compile's default ``dynamic``,
and the compiles that takes. Exits 1 when any model's tokens differ from eager's, a graph
leaves ops in PyTorch or a block fell back, so it doubles as a check.

    .venv/bin/python bench/llm.py                                  # all five models, float32
    .venv/bin/python bench/llm.py --models llama,gemma --precision half --prompt-lengths 8,20,100,512

Prints a table and writes JSON (machine, versions, date) to ``bench/results/llm.json``
(``--json`` for another path). Engines are built with whichever TensorRT is installed and
evaluated with the ``reference`` runtime, batch 1.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

from fresh_process import run_child  # beside this file

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("llama", "mistral", "qwen2", "gemma", "phi3")
# The shape every model shares: small enough to build in seconds, big enough to have GQA
# (4 query heads over 2 key/value heads), a causal mask and a rotary embedding.
COMMON = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
          "max_position_embeddings": 1024, "pad_token_id": 0}
PROMPT_LENGTH = 8


def build_model(name: str, seed: int = 0):
    """``(model, config)`` for ``name``: a causal LM with random weights, eval mode, float32."""
    import torch
    import transformers

    extra = {
        "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
        # A sliding window makes the static cache guard a Python int that changes every token:
        # dynamo would recompile per token whatever the backend.
        "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
        "gemma": ("GemmaConfig", "GemmaForCausalLM", {"head_dim": 16}),  # its default is 256
        "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),
    }
    config_cls, model_cls, options = extra[name]
    torch.manual_seed(seed)
    config = getattr(transformers, config_cls)(**COMMON, **options)
    return getattr(transformers, model_cls)(config).eval(), config


def _prompt(length: int, vocab: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (1, length), generator=generator)  # 0 is the pad token


def _compile(model, precision: str, dynamic: bool | None, max_dynamic_size: int | None = None):
    """Replace ``model.forward`` with plugtrt's compiled one, wrapped to time each call and to
    attribute the compiles (and their reports) it triggers to prefill or decode."""
    import torch

    import plugtrt

    compiled = torch.compile(model.forward, backend="plugtrt", dynamic=dynamic,
                             options={"runtime": "reference", "min_block_size": 1,
                                      "precision": precision, "max_dynamic_size": max_dynamic_size})
    calls: list[dict] = []

    @functools.wraps(model.forward)  # generate() reads forward's signature
    def forward(*args, **kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        before = plugtrt.compile_count()
        start = time.perf_counter()
        out = compiled(*args, **kwargs)
        seconds = time.perf_counter() - start
        builds = plugtrt.compile_count() - before
        reports = plugtrt.compile_reports()[-builds:] if builds else []
        calls.append({"kind": "prefill" if ids.shape[1] > 1 else "decode", "seconds": seconds,
                      "builds": builds, "reports": reports, "length": ids.shape[1]})
        return out

    model.forward = forward
    return calls


def _graph(report) -> dict:
    return {"graph": report.graph, "input_shapes": [list(s) for s in report.input_shapes],
            "dynamic": report.dynamic, "engines": len(report.engines),
            "engine_names": [e.name for e in report.engines],
            "layers": [e.layers for e in report.engines],
            "build_seconds": sum(e.build_seconds for e in report.engines),
            "pytorch_ops": list(report.pytorch_ops), "fallbacks": list(report.fallbacks)}


def measure_generate(name: str, precision: str, new_tokens: int) -> dict:
    """Eager ``generate()`` then plugtrt's, with ``cache_implementation="static"``."""
    import torch

    model, config = build_model(name)
    ids = _prompt(PROMPT_LENGTH, config.vocab_size, seed=1)
    kwargs = {"max_new_tokens": new_tokens, "do_sample": False, "cache_implementation": "static",
              "disable_compile": True}  # on a GPU generate() would compile with inductor itself
    with torch.no_grad():
        want = model.generate(ids, **kwargs)
        calls = _compile(model, precision, dynamic=False)
        start = time.perf_counter()
        got = model.generate(ids, **kwargs)
        generate_seconds = time.perf_counter() - start
    first = {kind: next((c["seconds"] for c in calls if c["kind"] == kind), None)
             for kind in ("prefill", "decode")}
    return {
        "graphs": {kind: [_graph(r) for c in calls if c["kind"] == kind for r in c["reports"]]
                   for kind in ("prefill", "decode")},
        "first_call_seconds": first, "generate_seconds": generate_seconds,
        "builds": sum(c["builds"] for c in calls), "calls": len(calls),
        "tokens_equal": torch.equal(got, want), "tokens": got[0].tolist(),
        "eager_tokens": want[0].tolist(),
    }


def measure_lengths(name: str, precision: str, new_tokens: int, lengths: list[int]) -> dict:
    """Prompts of several lengths through one reused ``StaticCache``, ``dynamic`` left default."""
    import torch
    import transformers

    model, config = build_model(name)
    cache = transformers.StaticCache(config=config, max_cache_len=max(lengths) + new_tokens)
    # transformers 5 renamed generate()'s ``past_key_values`` to ``cache``
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    kwargs = {"max_new_tokens": new_tokens, "do_sample": False, "disable_compile": True,
              cache_arg: cache}
    prompts = {n: _prompt(n, config.vocab_size, seed=n) for n in lengths}
    with torch.no_grad():
        want = {}
        for n, ids in prompts.items():
            cache.reset()
            want[n] = model.generate(ids, **kwargs)
        # generate() builds the prompt tensor, so it cannot be marked dynamic with a max: the
        # option bounds the profile instead, so one dynamic prefill serves every later length
        calls = _compile(model, precision, dynamic=None, max_dynamic_size=max(lengths))
        per_length = {}
        for n, ids in prompts.items():
            cache.reset()
            mark = len(calls)
            got = model.generate(ids, **kwargs)
            mine = calls[mark:]
            per_length[n] = {
                "tokens_equal": torch.equal(got, want[n]),
                "prefill_builds": sum(c["builds"] for c in mine if c["kind"] == "prefill"),
                "decode_builds": sum(c["builds"] for c in mine if c["kind"] == "decode"),
                "prefill_seconds": next(c["seconds"] for c in mine if c["kind"] == "prefill"),
            }
    return {
        "lengths": per_length,
        "graphs": {kind: [_graph(r) for c in calls if c["kind"] == kind for r in c["reports"]]
                   for kind in ("prefill", "decode")},
        "builds": sum(c["builds"] for c in calls),
        "tokens_equal": all(v["tokens_equal"] for v in per_length.values()),
    }


def versions() -> dict:
    import torch
    import transformers

    from plugtrt import trt_adapter

    trt = trt_adapter.load()
    return {"python": platform.python_version(), "torch": torch.__version__,
            trt_adapter.flavour(): trt.__version__, "transformers": transformers.__version__}


def _per_graph(graphs: dict, cell) -> str:
    """``prefill/decode``, each graph of a kind joined by ``+`` (one per kind when whole)."""
    return " / ".join("+".join(cell(g) for g in graphs[kind]) or "-" for kind in ("prefill", "decode"))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def problems(result: dict) -> list[str]:
    """Why a measurement fails the check: an error, tokens unlike eager's, ops in PyTorch, fallbacks."""
    if "error" in result:
        return [result["error"]]
    found = [] if result["tokens_equal"] else ["tokens differ from eager's"]
    for kind, graphs in result["graphs"].items():
        if not graphs:
            found.append(f"no {kind} graph compiled")
        for g in graphs:
            if g["pytorch_ops"]:
                found.append(f"{kind} {g['graph']}: {len(g['pytorch_ops'])} ops in PyTorch "
                             f"({', '.join(sorted(set(g['pytorch_ops'])))})")
            found.extend(f"{kind} {g['graph']}: fallback {f}" for f in g["fallbacks"])
    return found


def _markdown(head: list[str], results: dict, row) -> str:
    """A markdown table of ``row(name, result)`` per model; a model whose run failed gets its
    error instead."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"error: {r['error']}"] if "error" in r else row(name, r)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results: dict) -> str:
    def row(name, r):
        g = r["graphs"]
        return [name, _per_graph(g, lambda x: str(x["engines"])),
                _per_graph(g, lambda x: "+".join(map(str, x["layers"])) or "0"),
                _per_graph(g, lambda x: f"{x['build_seconds']:.2f}"),
                _per_graph(g, lambda x: str(len(x["pytorch_ops"]))),
                _seconds(r["first_call_seconds"]["prefill"]), _seconds(r["first_call_seconds"]["decode"]),
                str(r["builds"]), "yes" if r["tokens_equal"] else "NO"]
    return _markdown(["model", "engines", "layers", "build s", "torch ops", "1st prefill s",
                      "1st decode s", "builds", "tokens = eager"], results, row)


def lengths_table(results: dict, lengths: list[int]) -> str:
    def row(name, r):
        per = r["lengths"]
        graphs = {g["graph"] for kind in r["graphs"].values() for g in kind}
        return [name, ",".join(map(str, lengths)), str(r["builds"]), str(len(graphs)),
                ",".join(str(per[str(n)]["prefill_builds"]) for n in lengths),
                ",".join(str(per[str(n)]["decode_builds"]) for n in lengths),
                _per_graph(r["graphs"], lambda x: str(x["engines"])),
                _per_graph(r["graphs"], lambda x: str(len(x["pytorch_ops"]))),
                "yes" if r["tokens_equal"] else "NO"]
    return _markdown(["model", "prompt lengths", "builds", "graphs", "prefill builds per length",
                      "decode builds per length", "engines", "torch ops", "tokens = eager"],
                     results, row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--precision", choices=("float32", "half"), default="float32",
                        help="plugtrt's precision option; the model itself stays float32")
    parser.add_argument("--new-tokens", type=int, default=16, help="max_new_tokens of generate()")
    parser.add_argument("--prompt-lengths", default="",
                        help="comma-separated prompt lengths (e.g. 8,20,100,512) for the reused-cache, "
                             "dynamic-shape table; off when empty")
    parser.add_argument("--json", type=Path, default=RESULTS / "llm.json", help="where to write the results")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model and table")
    parser.add_argument("--child", nargs=2, metavar=("ARGS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import warnings

        warnings.simplefilter("ignore")
        mode, *rest = json.loads(args.child[0])
        result = measure_generate(*rest) if mode == "generate" else measure_lengths(*rest)
        Path(args.child[1]).write_text(json.dumps(result))
        return 0
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    lengths = [int(n) for n in args.prompt_lengths.split(",") if n.strip()]
    generate, by_length = {}, {}
    for name in names:
        print(f"{name}: generate ...", file=sys.stderr, flush=True)
        generate[name] = run_child(
            __file__, [json.dumps(["generate", name, args.precision, args.new_tokens])], args.timeout)
        if lengths:
            print(f"{name}: prompt lengths {lengths} ...", file=sys.stderr, flush=True)
            by_length[name] = run_child(
                __file__, [json.dumps(["lengths", name, args.precision, args.new_tokens, lengths])],
                args.timeout)
    print(table(generate))
    if lengths:
        print()
        print(lengths_table(by_length, lengths))
    stamp = datetime.datetime.now(datetime.timezone.utc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": stamp.isoformat(), "machine": {"platform": platform.platform(),
                                               "processor": platform.processor(),
                                               "cpus": os.cpu_count()},
        "versions": versions(), "config": COMMON, "prompt_length": PROMPT_LENGTH,
        "new_tokens": args.new_tokens, "precision": args.precision, "runtime": "reference",
        "models": generate, "prompt_lengths": lengths, "by_prompt_length": by_length}, indent=2))
    print(f"\nwritten to {args.json}")
    failed = [f"  {name}{' (prompt lengths)' if table_ is by_length else ''}: {p}"
              for table_ in (generate, by_length) for name, r in table_.items() for p in problems(r)]
    if failed:
        print("FAILED:\n" + "\n".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
