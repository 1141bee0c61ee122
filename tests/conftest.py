"""Shared fixtures: hermetic plugin managers, a fake-distribution factory, the gpu marker, a
per-test engine cache directory, and the recorder of which built-in converters ran inside the
converter property tests."""
from __future__ import annotations

import functools
import gc
import os
import textwrap
from pathlib import Path

import attrs
import pluggy
import pytest
import torch
from hypothesis import is_hypothesis_test
from hypothesis import settings as hypothesis_settings

import plugtrt.testing
from plugtrt.manager import new_plugin_manager

# CI replays the same examples on every run, so a red build is reproducible and not flaky, and
# runs fewer of them (the converter tests' budgets: tests/converters/strategies.py); local runs
# draw fresh examples (more bugs found over time) and print the seed/blob to reproduce a failure
# with @reproduce_failure.
hypothesis_settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


# -- torch's compile-time bookkeeping that no test reads ------------------------------------------
# The suite compiles tens of thousands of small graphs, where torch's fixed cost per compile
# outweighs the graph's own. Three parts of that cost only measure or log the compile; the
# tracing, the guards and the graphs are unchanged without them.

def _skip_unread_compile_bookkeeping() -> None:
    """- Dynamo times each frame's new guards once, for a log line and a metric, after evicting
      the CPU caches by writing a buffer far larger than them: 18 ms, mostly kernel time, per
      compile, which was a fifth of a converter test's time.
    - torch's structured trace (tlparse's input) builds every event's payload, and captures
      the Python stack of one without a compile id, whenever its logger ``torch.__trace`` has a
      handler. It always has: torch's own, which writes only where ``TORCH_TRACE`` names a
      directory, and pytest's capture handlers, which pytest adds to every logger that does not
      propagate. Without TORCH_TRACE the logger loses torch's handler and propagates (so
      pytest adds none); that was another tenth.
    - Dynamo runs a young-generation collection after every compile, to return memory early;
      the collector runs on its own thresholds anyway."""
    from torch._dynamo import guards
    from torch._logging._internal import trace_log

    if callable(getattr(guards, "profile_guard_manager", None)):
        guards.profile_guard_manager = lambda *args, **kwargs: 0.0
    if not os.environ.get("TORCH_TRACE"):
        for handler in list(trace_log.handlers):
            trace_log.removeHandler(handler)
        trace_log.propagate = True
    if hasattr(torch._dynamo.config, "run_gc_after_compile"):  # setting an unknown option raises
        torch._dynamo.config.run_gc_after_compile = False


_skip_unread_compile_bookkeeping()


# -- property-test coverage ---------------------------------------------------------------------
# Every built-in converter needs a hypothesis property test through the whole backend (issue 10).
# The recorder wraps ``plugtrt.testing.run_through_backend`` (``assert_converts`` calls it) before
# any test module imports it, and notes the converters of every engine it built while a
# hypothesis test of tests/converters/ was running. tests/converters/test_property_coverage.py
# runs last and fails for the built-in converters none of them exercised, when the session ran
# the whole directory: nothing deselected (-k, -m, --lf, --deselect), no file or test picked alone.
# Under pytest-xdist each worker records only the tests it ran: the workers leave the coverage
# test out, send their records to the controller when they finish (``workeroutput``), and the
# controller merges them and reports the verdict under the coverage test's name (_XdistCoverage).

CONVERTER_TESTS = Path(__file__).parent / "converters"
PROPERTY_COVERAGE_TEST = "test_property_coverage.py"


@attrs.define
class PropertyCoverage:
    converters: dict[str, set[str]] = attrs.Factory(dict)
    """Built-in converter name -> node ids of the property tests whose engines it built layers of."""
    narrowed: list[str] = attrs.Factory(list)
    """Why this session did not run all of tests/converters (empty: it did)."""
    failed: list[str] = attrs.Factory(list)
    """Node ids of converter tests that failed in this session (their converters may be missing)."""
    running: str | None = None
    """The hypothesis test of tests/converters/ that runs now."""
    judged_here: bool = False
    """The session collected the coverage test (on the xdist controller: some worker did)."""

    def to_message(self) -> dict:
        """What an xdist worker sends the controller (execnet carries only plain types)."""
        return {"converters": {name: sorted(ids) for name, ids in self.converters.items()},
                "narrowed": self.narrowed, "judged_here": self.judged_here}

    def merge(self, message: dict) -> None:
        """Add a worker's records; every worker collects the same tests, so its ``narrowed`` is
        everyone's."""
        for name, ids in message["converters"].items():
            self.converters.setdefault(name, set()).update(ids)
        self.narrowed += [why for why in message["narrowed"] if why not in self.narrowed]
        self.judged_here |= message["judged_here"]


_coverage = PropertyCoverage()
_run_through_backend = plugtrt.testing.run_through_backend


@functools.wraps(_run_through_backend)
def _recording_run_through_backend(*args, **kwargs):
    run = _run_through_backend(*args, **kwargs)
    if _coverage.running is not None:
        for name in run.converters:
            _coverage.converters.setdefault(name, set()).add(_coverage.running)
    return run


plugtrt.testing.run_through_backend = _recording_run_through_backend


def _in_converter_tests(item) -> bool:
    return Path(item.path).parent == CONVERTER_TESTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    property_test = _in_converter_tests(item) and is_hypothesis_test(getattr(item, "obj", None))
    _coverage.running = item.nodeid if property_test else None
    try:
        return (yield)
    finally:
        _coverage.running = None


def pytest_runtest_logreport(report):
    if report.failed and report.nodeid.startswith("tests/converters/test_"):
        _coverage.failed.append(report.nodeid)


def pytest_deselected(items):
    _coverage.narrowed += [f"{item.nodeid} deselected" for item in items if _in_converter_tests(item)
                           and not _is_coverage_test(item)][:3]


def _is_coverage_test(item) -> bool:
    return Path(item.path).name == PROPERTY_COVERAGE_TEST and _in_converter_tests(item)


def _xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    if config.pluginmanager.hasplugin("xdist") and not _xdist_worker(config):
        config.pluginmanager.register(_XdistCoverage(config), "plugtrt-xdist-coverage")
        config.pluginmanager.register(_SharedWorkScheduling(), "plugtrt-xdist-scheduling")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if _xdist_worker(config) and workers > 1:
        # each worker gets its share of the cores: torch's default of one thread per core in
        # every worker oversubscribes them, and every op waits for the others' threads
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_sessionfinish(session):
    if _xdist_worker(session.config):
        session.config.workeroutput["property_coverage"] = _coverage.to_message()


SHARED_SESSION_WORK = {"tests/converters/test_corpus.py": "corpus",
                       "tests/runtimes/test_conformance.py": "corpus",
                       "tests/test_docs.py": "docs",
                       "tests/test_serve.py": "serve"}
"""Test files whose fixtures are expensive and shared (the converter corpus, its dynamic twin,
the ONNX conformance run; the docs pages' engine cache; the Triton server), by group:
``--dist loadgroup`` sends each group to one worker, so those fixtures are built once per
session rather than once per worker."""


class _SharedWorkScheduling:
    """Builds xdist's scheduler for ``--dist loadgroup`` with :data:`SHARED_SESSION_WORK` as
    the groups. xdist 3.8 groups by ``xdist_group`` marks by renaming ``item._nodeid`` on the
    workers, which pytest 9 no longer reads: the marks are silently ignored there. The
    controller knows nodeids only, so the groups are named by file here."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadGroupScheduling

        class ByFile(LoadGroupScheduling):
            def _split_scope(self, nodeid: str) -> str:
                group = SHARED_SESSION_WORK.get(nodeid.split("::", 1)[0])
                return group if group is not None else super()._split_scope(nodeid)

        return ByFile(config, log)


class _XdistCoverage:
    """The xdist controller's half of the property-coverage check: merges what each worker
    recorded and judges the whole session once every worker is done."""

    def __init__(self, config):
        self.config = config
        self.workers = 0

    def pytest_testnodedown(self, node, error):
        message = getattr(node, "workeroutput", {}).get("property_coverage")
        if message is not None:
            _coverage.merge(message)
            self.workers += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        if not self.workers or not _coverage.judged_here:
            return
        from tests.converters import test_property_coverage as check

        nodeid = f"tests/converters/{PROPERTY_COVERAGE_TEST}::test_every_builtin_converter_has_a_property_test"
        location = (f"tests/converters/{PROPERTY_COVERAGE_TEST}", 0,
                    "test_every_builtin_converter_has_a_property_test")
        if _coverage.narrowed:
            outcome, longrepr = "skipped", (location[0], 0, "Skipped: judged only when the session runs "
                                            "all of tests/converters: " + "; ".join(_coverage.narrowed[:3]))
        else:
            problem = check.missing_property_tests(_coverage)
            outcome, longrepr = ("passed", None) if problem is None else ("failed", problem)
        report = pytest.TestReport(nodeid=nodeid, location=location, keywords={}, outcome=outcome,
                                   longrepr=longrepr, when="call")
        self.config.hook.pytest_runtest_logreport(report=report)
        if outcome == "failed" and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_finish(session):
    collected = {Path(item.path).name for item in session.items if _in_converter_tests(item)}
    if _coverage.judged_here:  # an xdist worker left it out for the controller to judge
        collected.add(PROPERTY_COVERAGE_TEST)
    every = {p.name for p in CONVERTER_TESTS.glob("test_*.py")}
    _coverage.narrowed += [f"{name} not collected" for name in sorted(every - collected)][:3]
    _coverage.narrowed += [f"{arg} picks tests" for arg in session.config.args
                           if "::" in arg and Path(arg.split("::")[0]).resolve().parent == CONVERTER_TESTS]
    _freeze_what_collection_imported()


def _freeze_what_collection_imported() -> None:
    """Moves every object alive after collection (torch, transformers, the test modules: hundreds
    of thousands) out of the cyclic collector's reach. They live for the whole session anyway,
    and the collections walking them again and again took a fifth of a converter test's time."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def property_coverage() -> PropertyCoverage:
    """What the recorder saw so far this session (complete when the coverage test runs, last)."""
    return _coverage


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    last = [item for item in items if _is_coverage_test(item)]
    _coverage.judged_here = bool(last)
    # it runs last; on an xdist worker not at all: the controller judges every worker's records
    items[:] = [item for item in items if item not in last] + ([] if _xdist_worker(config) else last)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU that runs TensorRT engines")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A bare plugin manager: plugtrt's hook specs, no plugins, no entry points."""
    return new_plugin_manager()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """``make(dist, {entry_point_name: module_source}, version="0.1")``: an installed-looking
    distribution whose ``plugtrt`` entry points are modules written to ``tmp_path``; calling it
    again for the same distribution changes its version (an upgrade)."""

    def make(dist: str, modules: dict[str, str], version: str = "0.1") -> None:
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[plugtrt]"]
        for name, source in modules.items():
            module = name.replace(".", "_")
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {module}")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


@pytest.fixture(scope="session")
def corpus_results():
    """The converter corpus, converted and built once per session (fp32 and fp16)."""
    from tests.converters.corpus import CORPUS, run_entry

    return [run_entry(i, p) for i in range(len(CORPUS)) for p in (torch.float32, torch.float16)]


@pytest.fixture(scope="session")
def dynamic_corpus_results():
    """(index, every_input, dims) -> every DYNAMIC_CORPUS entry with dim 0 (``batch``), then
    its spatial or last dims (``trailing``), symbolic in its first input, then in every input
    (None where tracing or a validator left nothing dynamic), once per session. Modes that
    make the same dims symbolic share one run."""
    from tests.converters.corpus import DYNAMIC_CORPUS, dynamic_modes, run_entry_dynamic

    results = {}
    for i in range(len(DYNAMIC_CORPUS)):
        runs = {}
        for (every, dims), marking in dynamic_modes(i).items():
            if marking not in runs:
                runs[marking] = run_entry_dynamic(i, every, dims)
            results[(i, every, dims)] = runs[marking]
    return results

