"""Running one measurement in a fresh interpreter with an empty engine cache, for the bench
scripts: a cold compile, and a crash or a hang that costs one row of the table, not the run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_child(script: str, child_args: list[str], timeout: float) -> dict:
    """``script --child *child_args OUT`` in a fresh interpreter with an empty engine cache; the
    JSON the child writes to OUT, or an ``error`` entry saying why there is none."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out, \
            tempfile.TemporaryDirectory(prefix="plugtrt-bench-cold-") as cache:
        cmd = [sys.executable, script, "--child", *child_args, out.name]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PLUGTRT_CACHE_DIR": cache})
        except subprocess.TimeoutExpired:
            return {"error": f"no result within {timeout:.0f} s"}
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
        return json.loads(Path(out.name).read_text())
