"""Dynamic shapes through torch.compile: one engine serves a range of sizes (optimization
profiles), counted at the compile reports, every call compared with eager."""
from __future__ import annotations

import logging

import attrs
import pytest
import torch
import torchvision
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

from plugtrt.backend import compile_graph
from plugtrt.settings import CompilationSettings
from plugtrt.testing import plugin_registry

from .models import LastHiddenState


@attrs.define
class Compiled:
    """A model compiled by plugtrt (reference runtime), with every graph dynamo handed over."""

    model: object
    graphs: list = attrs.Factory(list)

    @property
    def builds(self) -> list[int]:
        """Per dynamo graph, how many times plugtrt compiled it (a rebuild counts again)."""
        return [len(g.reports) for g in self.graphs]

    @property
    def reports(self) -> list:
        return [r for g in self.graphs for r in g.reports]


def compiled(model, dynamic=None, **options) -> tuple[Compiled, object]:
    result = Compiled(model)
    settings_ = CompilationSettings.from_options({"runtime": "reference", "min_block_size": 1, **options})

    def backend(gm, example_inputs, **_):
        graph = compile_graph(gm, example_inputs, settings_, plugin_registry())
        result.graphs.append(graph)
        return graph

    torch._dynamo.reset()
    return result, torch.compile(model, backend=backend, dynamic=dynamic)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def check(run, model, *inputs, tol=1e-4):
    with torch.no_grad():
        torch.testing.assert_close(run(*inputs), model(*inputs), rtol=tol, atol=tol)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.GELU(), torch.nn.LayerNorm(32),
                                          torch.nn.Linear(32, 5))

    def forward(self, x):
        return torch.softmax(self.layers(x), dim=-1)


@settings(max_examples=3, deadline=None)
@given(sizes=st.lists(st.integers(3, 63), min_size=6, max_size=6, unique=True))
def test_marked_range_builds_one_engine_for_every_size_in_it(sizes):
    """The profile's min and max (2 and 64) and six drawn sizes, in drawn order after the
    first: one build, all equal to eager."""
    model = MLP().eval()
    result, run = compiled(model)
    for size in [sizes[0], 2, 64, *sizes[1:]]:
        x = torch.randn(size, 12) * 10
        torch._dynamo.mark_dynamic(x, 0, min=2, max=64)
        check(run, model, x)
    assert result.builds == [1]
    (report,) = result.reports
    assert len(report.engines) == 1 and report.pytorch_ops == [] and report.fallbacks == []


@settings(max_examples=3, deadline=None)
@given(sizes=st.lists(st.integers(2, 64), min_size=8, max_size=8, unique=True))
def test_unbounded_dim_rebuilds_at_most_log_times(sizes):
    """No upper bound: the profile reaches the next power of two at or above twice the largest
    size seen (at least 16), widened by a logged rebuild: at most 4 builds for 2..64."""
    model = MLP().eval()
    result, run = compiled(model, dynamic=True)
    logged = Records()
    logging.getLogger("plugtrt").addHandler(logged)
    try:
        for size in sizes:
            check(run, model, torch.randn(size, 12))
    finally:
        logging.getLogger("plugtrt").removeHandler(logged)
    (builds,) = result.builds
    assert 1 <= builds <= 4
    rebuilds = [r for r in logged.records if "outside the profile" in r.getMessage()]
    assert len(rebuilds) == builds - 1
    assert all(len(r.engines) == 1 and not r.pytorch_ops for r in result.reports)


def test_cnn_with_dynamic_batch_is_one_engine():
    """Dynamo on a CPU guards a convolution's batch below 16 while tracing, so the range is 2..15."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    result, run = compiled(model)
    for batch in (2, 5, 15, 3, 9):
        x = torch.randn(batch, 3, 32, 32)
        torch._dynamo.mark_dynamic(x, 0, min=2, max=15)
        check(run, model, x)
    assert result.builds == [1]
    (report,) = result.reports
    assert len(report.engines) == 1 and report.pytorch_ops == []


def test_bert_with_dynamic_batch_and_sequence_compiles_once():
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, vocab_size=100)
    model = LastHiddenState(transformers.BertModel(config).eval())
    result, run = compiled(model)
    for batch, length in ((3, 17), (2, 2), (64, 64), (5, 32), (4, 11), (7, 50), (2, 63), (9, 8)):
        ids = torch.randint(0, 100, (batch, length))
        torch._dynamo.mark_dynamic(ids, 0, min=2, max=64)
        torch._dynamo.mark_dynamic(ids, 1, min=2, max=64)
        check(run, model, ids)
    assert result.builds == [1]
    (report,) = result.reports
    # token-type ids: a gather whose index is narrower than its data (issue: operator breadth)
    assert set(report.pytorch_ops) <= {"aten.gather.default"} and report.engines


def test_graph_that_computes_with_sizes_stays_in_one_engine():
    def model(x, y):
        flat = x.view(x.size(0), -1)
        return flat[:, : flat.size(1) // 2] * 2 + y.sum(), flat.reshape(-1, 2).sum(0)

    result, run = compiled(model, dynamic=True)
    for batch, width in ((3, 4), (6, 8), (9, 6)):
        check(run, model, torch.randn(batch, width, 2), torch.randn(batch))
    assert result.builds == [1]
    (report,) = result.reports
    assert len(report.engines) == 1 and report.pytorch_ops == [] and report.fallbacks == []


def test_size_given_only_as_an_int_argument_compiles_per_size():
    """A symbol no input tensor carries cannot be traced into the graph: such a graph is
    specialised per concrete size, each compiled once."""
    def model(x, n: int):
        return x.view(n, -1) * 3

    result, run = compiled(model, dynamic=True)
    for rows in (4, 6, 4, 10):
        check(run, model, torch.randn(rows * 3), rows)
    assert result.builds == [3]
    assert all(len(r.engines) == 1 and not r.fallbacks for r in result.reports)


def test_call_outside_an_engine_profile_is_refused_with_the_bounds():
    from plugtrt.runtime import BoundarySpec, EngineModule

    class Echo(EngineModule):
        def execute(self, inputs):
            return list(inputs)

    spec = BoundarySpec(name="input_0", shape=(-1, 4), model_dtype=torch.float32,
                        engine_dtype=torch.float32,
                        profiles=(((2, 4), (8, 4), (16, 4)), ((17, 4), (17, 4), (19, 4))))
    artifact = type("Artifact", (), {"name": "e", "inputs": (spec,), "outputs": (spec,)})()
    with pytest.raises(ValueError, match=r"input_0 \(20, 4\), outside all its optimization profiles "
                                         r"\(0: input_0 \(2, 4\)\.\.\(16, 4\); 1: input_0 \(17, 4\)\.\.\(19, 4\)\)"):
        Echo(artifact)(torch.zeros(20, 4))


def test_symbolic_scalar_arithmetic_and_checks_stay_in_the_engine():
    """Sizes as floats and booleans (``sym_float``, true division, comparisons), slices counted
    from the end of a dynamic dim, and a ``torch._check`` on a size (dynamo guards it, so the
    graph's runtime assertion is dropped): one engine, and a size the check rejects still raises."""
    def model(x):
        torch._check(x.shape[0] % 2 == 1)
        scaled = x * (x.shape[0] / x.shape[1]) + (x.shape[1] > 3)
        return scaled[-3:] + x[-3:, -2:].sum(1, keepdim=True)

    result, run = compiled(model, dynamic=True)
    for rows, cols in ((5, 6), (7, 3), (9, 8)):
        check(run, model, torch.randn(rows, cols))
    assert result.builds == [1]
    (report,) = result.reports
    assert len(report.engines) == 1 and report.pytorch_ops == [] and report.fallbacks == []
    with pytest.raises(Exception, match="_check"):
        run(torch.randn(6, 4))


def test_dynamic_graph_without_engines_says_so_once_and_why():
    """pdist declines symbolic sizes: the graph runs in PyTorch, and the warning names the op and
    what to do; widening its profile later says 'recompiling', not 'rebuilding engines'."""
    def model(x):
        return torch.nn.functional.pdist(x)

    logged = Records()
    logging.getLogger("plugtrt").addHandler(logged)
    try:
        result, run = compiled(model, dynamic=True)
        for rows in (5, 7, 40):
            check(run, model, torch.randn(rows, 3))
    finally:
        logging.getLogger("plugtrt").removeHandler(logged)
    messages = [r.getMessage() for r in logged.records]
    no_engine = [m for m in messages if "builds no engine" in m]
    assert len(no_engine) == len(result.reports) >= 1
    assert "aten._pdist_forward.default x1" in no_engine[0] and "mark_static" in no_engine[0]
    assert not any("rebuilding them" in m for m in messages)
    assert any("recompiling it" in m for m in messages)
