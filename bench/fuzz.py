"""The long run of issue 9's fuzzer: random models through plugtrt, compared with eager.

    .venv/bin/python bench/fuzz.py --examples 10000 --minutes 60

Runs the suite's property (``tests/fuzz``) in batches of fresh hypothesis seeds until
``--examples`` programs were tried or ``--minutes`` passed. A failing batch is shrunk by
hypothesis and its reproducer kept; the run goes on with the next batch. Prints the counts and
every failure, and writes them as JSON to ``bench/results/fuzz-<time>.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # the fuzzer lives in tests/fuzz

from tests.fuzz.oracle import check_program  # noqa: E402
from tests.fuzz.programs import programs  # noqa: E402


class Tally:
    """Counts over the run; ``shrinking`` marks calls made while hypothesis shrinks a failure,
    which are not new random models and are counted apart."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.left_in_pytorch: Counter[str] = Counter()
        self.left_in_pytorch_dynamic: Counter[str] = Counter()
        """Ops left in PyTorch by programs with dynamic dims (conv and pooling with symbolic
        spatial sizes, today)."""
        self.fallbacks: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.failures: list[dict] = []
        self.shrinking = False

    def record(self, program, outcome) -> None:
        c = self.counts
        c["examples"] += 1
        if outcome.rejected:
            c["rejected"] += 1
            self.rejections[outcome.rejected.split(" gave ")[0]] += 1
            return
        c["compared"] += 1
        c["with_engine"] += outcome.engines > 0
        c["engines"] += outcome.engines
        c["weights_checked"] += outcome.weights_checked
        c["fresh_inputs_checked"] += outcome.fresh_inputs_checked
        c[f"precision {program.option_dict['precision']}"] += 1
        c["partly_pytorch"] += bool(outcome.pytorch_ops)
        if program.dynamic is not None:
            c["dynamic"] += 1
            c["dynamic marked with bounds"] += program.dynamic.bounds is not None and not outcome.marks_refused
            c["dynamic marks refused by dynamo"] += outcome.marks_refused
            c["dynamic with symbolic graph"] += outcome.dynamic_graphs > 0
            c["dynamic sizes compared"] += outcome.sizes_compared
            c["dynamic compiles at other sizes"] += outcome.size_compiles
            c["dynamic engines built at other sizes"] += outcome.size_engines
            self.left_in_pytorch_dynamic.update(outcome.pytorch_ops)
        autocast = program.autocast
        if autocast.region is not None or autocast.ambient is not None:
            c["autocast"] += 1
            c["autocast region"] += autocast.region is not None
            c["autocast ambient"] += autocast.ambient is not None
            c["autocast leak checked"] += outcome.leak_checked
        if program.inference_weights:
            c["inference weights"] += 1
            c[f"inference weights {program.inference_weights}"] += 1
            c["inference weights changed and checked"] += outcome.weights_checked
        self.ops.update(s.op for s in program.steps)
        self.left_in_pytorch.update(outcome.pytorch_ops)
        self.fallbacks.update(f.split(":")[0][:200] for f in outcome.fallbacks)


def run_batch(tally: Tally, batch_seed: int, size: int, max_steps: int) -> None:
    @seed(batch_seed)
    @settings(max_examples=size, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))  # see tests/fuzz/test_fuzz.py for why each
    @given(program=programs(max_steps=max_steps))
    def prop(program):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outcome = check_program(program)
            except BaseException:
                tally.shrinking = True
                raise
        if tally.shrinking:
            tally.counts["shrink_calls"] += 1
        else:
            tally.record(program, outcome)

    tally.shrinking = False
    try:
        prop()
    except Exception as exc:  # a wrong answer (AssertionError) or a crash: both are findings
        # Hypothesis raises an ExceptionGroup when it found several distinct failures.
        for found in getattr(exc, "exceptions", [exc]):
            tally.failures.append({"seed": batch_seed, "type": type(found).__name__, "message": str(found)})
            print(f"\n=== FAILURE (batch seed {batch_seed}) ===\n{found}\n", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10000, help="random programs to try")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--batch", type=int, default=50, help="programs per hypothesis seed")
    parser.add_argument("--seed", type=int, default=0, help="first batch seed")
    parser.add_argument("--max-steps", type=int, default=8, help="most steps per program")
    args = parser.parse_args(argv)
    # The fuzzer changes weights in place on purpose: plugtrt's warning about it is expected.
    logging.getLogger("plugtrt").setLevel(logging.ERROR)
    # Stopping early still writes the summary: SIGTERM, and SIGINT even where a shell that
    # started the run in the background set it to be ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    tally = Tally()
    start = time.time()
    deadline = start + 60 * args.minutes if args.minutes else float("inf")
    batch_seed = args.seed
    try:
        while tally.counts["examples"] < args.examples and time.time() < deadline:
            run_batch(tally, batch_seed, min(args.batch, args.examples - tally.counts["examples"]),
                      args.max_steps)
            batch_seed += 1
            minutes = (time.time() - start) / 60
            print(f"[{minutes:6.1f} min] {dict(tally.counts)} failures {len(tally.failures)}", flush=True)
    except KeyboardInterrupt:  # stopped early (Ctrl-C, SIGTERM): the summary still counts
        print("\ninterrupted: summarising what ran", flush=True)

    minutes = (time.time() - start) / 60
    summary = {"examples": tally.counts["examples"], "minutes": round(minutes, 2),
               "failures": tally.failures, "counts": dict(tally.counts), "ops": dict(tally.ops),
               "left_in_pytorch": dict(tally.left_in_pytorch),
               "left_in_pytorch_dynamic": dict(tally.left_in_pytorch_dynamic), "fallbacks": dict(tally.fallbacks),
               "rejections": dict(tally.rejections), "batches": batch_seed - args.seed,
               "first_seed": args.seed, "max_steps": args.max_steps}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"\n{tally.counts['examples']} random models in {minutes:.1f} min: {tally.counts['compared']} "
          f"compared with eager, {tally.counts['rejected']} out of the comparable range, "
          f"{len(tally.failures)} failing batch(es); summary in {path}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
