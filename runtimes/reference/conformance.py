"""Prove the reference runtime against ONNX's conformance data, through NVIDIA's ONNX importer.

Every numeric check in plugtrt runs through the reference runtime, so its reading of TensorRT's
layer semantics needs an oracle that does not depend on our converters. ONNX ships single-node
test models with inputs and expected outputs; TensorRT ships an ONNX importer that turns each
model into an ``INetworkDefinition`` built by NVIDIA's code. For each case we parse, build the
engine (proving TensorRT accepts the network), snapshot it, evaluate the snapshot with the
reference runtime and compare with ONNX's expected outputs.

``python -m plugtrt conformance`` runs ``main_conformance``.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import numpy as np
import torch

from plugtrt.errors import ReferenceMismatchError, UnsupportedLayerError
from plugtrt.network_snapshot import NetworkSnapshot, snapshot_network
from plugtrt.trt_adapter import trt

STATUSES = ("parse_failed", "build_failed", "match", "mismatch", "unsupported", "error")
"""Per-case outcome; ``match`` means evaluated and equal to ONNX's expected outputs."""
_DATA_SETS = ("pytorch-converted", "pytorch-operator")
_ML_DTYPES = {"bfloat16": (np.uint16, torch.bfloat16), "float8_e4m3fn": (np.uint8, torch.float8_e4m3fn),
              "float8_e5m2": (np.uint8, torch.float8_e5m2)}


@attrs.frozen(kw_only=True)
class ConformanceCase:
    """One ONNX model with its data sets (inputs, expected outputs), as numpy arrays."""

    name: str
    op: str
    model: bytes = attrs.field(repr=False)
    data_sets: tuple[tuple[tuple, tuple], ...] = attrs.field(repr=False)
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    rtol: float = 1e-3
    atol: float = 1e-7


@attrs.frozen(kw_only=True)
class CaseResult:
    name: str
    op: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    detail: str = ""
    """Why it did not match: the importer's or builder's error, the runtime's, or the diff."""
    layer_types: tuple[str, ...] = ()
    layer_operations: tuple[str, ...] = ()
    """``layer_operation`` labels of the built network (``"UNARY/ASIN"``)."""
    seconds: float = 0.0

    @property
    def parsed(self) -> bool:
        return self.status != "parse_failed"

    @property
    def built(self) -> bool:
        return self.status not in ("parse_failed", "build_failed")


# -- loading cases -------------------------------------------------------------------------------

def _case_op(model) -> str:
    """The ONNX op a case tests: its single node, or the function an expanded case inlines."""
    nodes = model.graph.node
    if len(nodes) == 1:
        return nodes[0].op_type
    named = [node.name.split("_test_")[0] for node in nodes if "_test_" in node.name]
    return named[0] if named and named[0] else (nodes[0].op_type if nodes else "?")


def _array(value):
    """ONNX data as numpy; TensorProtos converted, sequences and optionals left as they are."""
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value) if isinstance(value, np.generic) else value


def _make_case(name: str, model, data_sets, rtol: float = 1e-3, atol: float = 1e-7) -> ConformanceCase:
    initializers = {init.name for init in model.graph.initializer}
    return ConformanceCase(
        name=name, op=_case_op(model), model=model.SerializeToString(),
        data_sets=tuple((tuple(map(_array, inputs)), tuple(map(_array, outputs)))
                        for inputs, outputs in data_sets),
        input_names=tuple(i.name for i in model.graph.input if i.name not in initializers),
        output_names=tuple(o.name for o in model.graph.output), rtol=rtol, atol=atol)


def node_cases() -> list[ConformanceCase]:
    """ONNX's node conformance cases (models generated with their data, ~1,900)."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators overflow on purpose
        cases = collect_testcases(None)
    return [_make_case(c.name, c.model, c.data_sets, c.rtol, c.atol) for c in cases]


def data_cases() -> list[ConformanceCase]:
    """The ``pytorch-converted`` and ``pytorch-operator`` models stored in the onnx package."""
    import onnx
    from onnx import numpy_helper

    root = Path(onnx.__file__).parent / "backend" / "test" / "data"
    cases = []
    for kind in _DATA_SETS:
        for folder in sorted((root / kind).iterdir()):
            model = onnx.load(str(folder / "model.onnx"))
            sets = []
            for data in sorted(folder.glob("test_data_set_*")):
                def read(prefix: str) -> list[np.ndarray]:
                    files = sorted(data.glob(f"{prefix}_*.pb"), key=lambda f: int(f.stem.split("_")[1]))
                    return [numpy_helper.to_array(onnx.load_tensor(str(f))) for f in files]
                sets.append((read("input"), read("output")))
            cases.append(_make_case(f"{kind}/{folder.name}", model, sets))
    return cases


def _qdq_model(name: str, op: str, x_type: int, shape: tuple[int, ...], scale: np.ndarray,
               zero: np.ndarray | None, zero_type: int, attributes: dict):
    """A one-node QuantizeLinear/DequantizeLinear model whose scale and zero point are
    initializers (TensorRT's importer takes no other kind)."""
    from onnx import TensorProto, helper, numpy_helper

    initializers = [numpy_helper.from_array(scale, "scale")]
    inputs = ["x", "scale"]
    if zero is not None:
        initializers.append(helper.make_tensor("zero", zero_type, zero.shape, zero.reshape(-1).tolist()))
        inputs.append("zero")
    out_type = zero_type if op == "QuantizeLinear" else TensorProto.FLOAT
    node = helper.make_node(op, inputs, ["y"], **attributes)
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info("x", x_type, shape)],
                              [helper.make_tensor_value_info("y", out_type, shape)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def quantization_cases() -> list[ConformanceCase]:
    """QuantizeLinear/DequantizeLinear cases in the forms TensorRT's importer parses, which
    ONNX's own node cases miss (theirs are uint8, or give the zero point as an input): int8 and
    float8e4m3fn, per tensor, per axis and blocked, with inputs on rounding ties (x.5 steps,
    even and odd) and past the saturation limits. ONNX's reference implementation computes the
    expected outputs, so the oracle is ONNX's, as for the node cases."""
    from onnx import TensorProto
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    shape = (2, 4, 6)
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, 300.0, -300.0, 1000.0, -1000.0])

    def quantize_input(scale: np.ndarray, axis: int, block: int | None) -> np.ndarray:
        steps = np.concatenate([ties, rng.normal(0, 60, int(np.prod(shape)) - ties.size)]).reshape(shape)
        expanded = scale if scale.ndim == 0 else (
            np.repeat(scale, block, axis=axis) if block else np.expand_dims(
                scale, [d for d in range(len(shape)) if d != axis]))
        return (steps * expanded).astype(np.float32)

    def dequantize_input(dtype: type, low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, shape).astype(np.float32).round().astype(dtype)

    forms = []  # (name, scale, axis, block size)
    forms.append(("per_tensor", np.array(0.05, np.float32), 1, None))
    for axis in (0, 1, 2):
        forms.append((f"axis{axis}", rng.uniform(0.01, 0.1, shape[axis]).astype(np.float32), axis, None))
    blocked = rng.uniform(0.01, 0.1, (2, 2, 6)).astype(np.float32)
    forms.append(("blocked_axis1", blocked, 1, 2))
    cases = []
    for type_name, onnx_type, numpy_type in (("int8", TensorProto.INT8, np.int8),
                                             ("e4m3fn", TensorProto.FLOAT8E4M3FN, None)):
        for form, scale, axis, block in forms:
            attributes = {"axis": axis} if scale.ndim else {}
            if block:
                attributes["block_size"] = block
            zero = np.zeros(scale.shape, np.float32)
            for op in ("QuantizeLinear", "DequantizeLinear"):
                name = f"plugtrt_{op.lower()}_{type_name}_{form}"
                if op == "QuantizeLinear":
                    model = _qdq_model(name, op, TensorProto.FLOAT, shape, scale, zero, onnx_type, attributes)
                    x = quantize_input(scale, axis, block)
                elif numpy_type is not None:
                    model = _qdq_model(name, op, onnx_type, shape, scale, zero, onnx_type, attributes)
                    x = dequantize_input(numpy_type, -128, 127)
                else:  # FP8 data: ONNX's evaluator quantizes float input to get valid bit patterns
                    quantizer = _qdq_model(name, "QuantizeLinear", TensorProto.FLOAT, shape, scale, zero,
                                           onnx_type, attributes)
                    x = ReferenceEvaluator(quantizer).run(None, {"x": quantize_input(scale, axis, block)})[0]
                    model = _qdq_model(name, op, onnx_type, shape, scale, zero, onnx_type, attributes)
                expected = ReferenceEvaluator(model).run(None, {"x": x})
                cases.append(_make_case(name, model, [([x], expected)]))
    return cases


# -- running one case ----------------------------------------------------------------------------

@functools.cache
def _logger_class() -> type:
    """A ``trt.ILogger`` that keeps errors for the report instead of printing them.

    Made on first use so that importing this module does not need TensorRT.
    """
    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                self.errors.append(msg)

    return Logger


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence the importer's direct writes to stdout/stderr (it prints unsupported types)."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _profile(builder, network, inputs: dict[str, np.ndarray]):
    """An optimisation profile fixing every dynamic or shape input to the first data set's."""
    profile = builder.create_optimization_profile()
    needed = False
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        value = inputs.get(tensor.name)
        if value is None:
            continue
        if tensor.is_shape_tensor:
            values = [int(v) for v in np.asarray(value).reshape(-1)]
            profile.set_shape_input(tensor.name, values, values, values)
            needed = True
        if any(d < 0 for d in tensor.shape):
            shape = tuple(np.asarray(value).shape)
            profile.set_shape(tensor.name, shape, shape, shape)
            needed = True
    return profile if needed else None


def _allow_attention_decomposition(network) -> None:
    """Mark every ``IAttention`` the importer made decomposable, as plugtrt's converter does:
    without it the builder insists on a fused kernel, which a CPU-only build (and many GPUs)
    lacks, and fails. Decomposing changes how the layer is built, not what it computes."""
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == trt.LayerType.ATTENTION_INPUT:
            layer.__class__ = trt.IAttentionInputLayer
            layer.attention.decomposable = True


def build_case(case: ConformanceCase) -> tuple[str, str, NetworkSnapshot | None]:
    """Parse and build one case: (status so far, detail, snapshot when it built)."""
    logger = _logger_class()()
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    with _quiet_fds():
        parsed = parser.parse(case.model)
    if not parsed:
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        return "parse_failed", "; ".join(errors)[:300], None
    _allow_attention_decomposition(network)
    config = builder.create_builder_config()
    config.builder_optimization_level = 0  # the plan is never run here: build fast
    first_inputs = dict(zip(case.input_names, case.data_sets[0][0])) if case.data_sets else {}
    profile = _profile(builder, network, {k: v for k, v in first_inputs.items()
                                          if isinstance(v, np.ndarray)})
    if profile is not None:
        config.add_optimization_profile(profile)
    with _quiet_fds():
        plan = builder.build_serialized_network(network, config)
    if plan is None:
        return "build_failed", "; ".join(logger.errors)[-300:], None
    return "built", "", snapshot_network(network)


def _to_torch(value: np.ndarray, spec) -> torch.Tensor:
    """A data-set array as a feed for network input ``spec``: its dtype, and its static shape
    when only the rank differs (ONNX's data writes some declared scalars as [1])."""
    array = np.ascontiguousarray(value)
    bits = _ML_DTYPES.get(array.dtype.name)
    if bits is not None:  # ml_dtypes arrays: torch cannot read them, reinterpret the bits
        tensor = torch.from_numpy(array.view(bits[0]).copy()).view(bits[1])
    else:
        tensor = torch.from_numpy(array.copy())
    if isinstance(spec.dtype, torch.dtype):
        tensor = tensor.to(spec.dtype)
    if spec.shape is not None and all(d >= 0 for d in spec.shape) and \
            tensor.numel() == int(np.prod(spec.shape)):
        tensor = tensor.reshape(spec.shape)
    return tensor


def _compare(name: str, got: torch.Tensor, expected: np.ndarray, rtol: float, atol: float) -> str:
    """'' when equal within tolerance, else a one-line description of the difference."""
    actual = got.cpu()
    if tuple(actual.shape) != tuple(expected.shape):
        return f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    if expected.dtype.kind in "biu" or expected.dtype == np.bool_:
        ok = np.array_equal(actual.to(torch.int64 if expected.dtype != np.bool_ else torch.bool).numpy(),
                            expected.astype(np.int64) if expected.dtype != np.bool_ else expected)
        return "" if ok else f"{name}: integer values differ"
    if actual.dtype in (torch.float16, torch.bfloat16) or expected.dtype.itemsize <= 2:
        rtol, atol = max(rtol, 1e-2), max(atol, 1e-3)
    else:
        rtol, atol = max(rtol, 1e-4), max(atol, 1e-5)
    values = actual.to(torch.float64).numpy()
    reference = expected.astype(np.float64)
    if np.allclose(values, reference, rtol=rtol, atol=atol, equal_nan=True):
        return ""
    worst = np.nanmax(np.abs(values - reference)) if values.size else 0.0
    return f"{name}: max abs diff {worst:.3g} (rtol={rtol}, atol={atol})"


def run_case(case: ConformanceCase) -> CaseResult:
    """Parse, build, snapshot, evaluate each data set and compare: one ``CaseResult``."""
    from plugtrt.runtimes.reference import ReferenceProgram

    start = time.perf_counter()
    result = _result_factory(case, start)
    try:
        status, detail, snapshot = build_case(case)
    except Exception as exc:  # noqa: BLE001 - a crash inside TensorRT is a result, not a stop
        return result("error", f"importer/builder raised {exc!r}")
    if snapshot is None:
        return result(status, detail)
    types = tuple(sorted(snapshot.layer_counts())), tuple(sorted(snapshot.layer_operations()))
    specs = {spec.name: spec for spec in snapshot.inputs}
    try:
        program = ReferenceProgram(snapshot)
        for inputs, expected in case.data_sets:
            if not all(isinstance(v, np.ndarray) for v in (*inputs, *expected)):
                return result("unsupported", "non-tensor (sequence/optional) data", types)
            feeds = {name: _to_torch(value, specs[name])
                     for name, value in zip(case.input_names, inputs) if name in specs}
            outputs = program.run(feeds)
            for name, want in zip(case.output_names, expected):
                problem = _compare(name, outputs[name], want, case.rtol, case.atol)
                if problem:
                    return result("mismatch", problem, types)
    except UnsupportedLayerError as exc:
        return result("unsupported", str(exc), types)
    except ReferenceMismatchError as exc:
        return result("mismatch", str(exc), types)
    except Exception as exc:  # noqa: BLE001 - report the case, keep going
        return result("error", f"{type(exc).__name__}: {exc}"[:300], types)
    return result("match", "", types)


def _result_factory(case: ConformanceCase, start: float):
    """A ``CaseResult`` factory for ``case`` that stamps the elapsed time."""
    def make(status: str, detail: str = "", types: tuple[tuple[str, ...], ...] = ((), ())) -> CaseResult:
        """``types``: the network's (layer types, layer operations), when it built."""
        return CaseResult(name=case.name, op=case.op, status=status, detail=detail, layer_types=types[0],
                          layer_operations=types[1], seconds=time.perf_counter() - start)
    return make


# -- running many --------------------------------------------------------------------------------

_WORKER_CASES: list[ConformanceCase] = []


def _run_index(index: int) -> CaseResult:
    torch.set_num_threads(1)
    return run_case(_WORKER_CASES[index])


def run_cases(cases: Sequence[ConformanceCase], jobs: int = 1) -> list[CaseResult]:
    """Run ``cases`` (in ``jobs`` forked processes when > 1); results in the cases' order."""
    if jobs <= 1:
        return [run_case(case) for case in cases]
    global _WORKER_CASES
    _WORKER_CASES = list(cases)
    context = multiprocessing.get_context("fork")  # workers inherit the generated cases
    with context.Pool(jobs, maxtasksperchild=200) as pool:
        return pool.map(_run_index, range(len(cases)), chunksize=8)


def summarize(results: Sequence[CaseResult]) -> dict[str, dict[str, int]]:
    """Per ONNX op: cases, parsed, built, evaluated (no unsupported layer/error), matching."""
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.op, dict.fromkeys(("cases", "parsed", "built", "evaluated", "match"), 0))
        row["cases"] += 1
        row["parsed"] += r.parsed
        row["built"] += r.built
        row["evaluated"] += r.status in ("match", "mismatch")
        row["match"] += r.status == "match"
    return table


def format_table(results: Sequence[CaseResult]) -> str:
    """A table per ONNX op plus totals and the share of built cases that match."""
    table = summarize(results)
    columns = ("cases", "parsed", "built", "evaluated", "match")
    width = max([len(op) for op in table] + [5])
    lines = [f"{'op':<{width}} " + " ".join(f"{c:>9}" for c in columns)]
    for op in sorted(table):
        lines.append(f"{op:<{width}} " + " ".join(f"{table[op][c]:>9}" for c in columns))
    totals = {c: sum(row[c] for row in table.values()) for c in columns}
    lines.append(f"{'TOTAL':<{width}} " + " ".join(f"{totals[c]:>9}" for c in columns))
    if totals["built"]:
        lines.append(f"matching / built: {totals['match'] / totals['built']:.1%}")
    return "\n".join(lines)


def main_conformance(argv: Sequence[str] | None = None) -> int:
    """``python -m plugtrt conformance [--filter REGEX] [--json [FILE]] [--jobs N] [--data]``.
    ``--json`` means what it means for ``ops``: alone, JSON rows on stdout instead of the table;
    with FILE, the rows written there beside the table."""
    parser = argparse.ArgumentParser(prog="plugtrt conformance", description=__doc__.split("\n")[0])
    parser.add_argument("--filter", default=None,
                        help="regex matched against the ONNX op name or the case name")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="per-case results as JSON: on stdout instead of the table, or into FILE")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", action="store_true",
                        help="also run the pytorch-converted and pytorch-operator models")
    parser.add_argument("--verbose", action="store_true", help="list every case that did not match")
    args = parser.parse_args(argv)
    cases = node_cases() + quantization_cases() + (data_cases() if args.data else [])
    if args.filter:
        pattern = re.compile(args.filter)
        cases = [c for c in cases if pattern.search(c.op) or pattern.search(c.name)]
    start = time.perf_counter()
    results = run_cases(cases, args.jobs)
    rows = json.dumps([attrs.asdict(r) for r in results], indent=1)
    if args.json == "-":
        print(rows)
        return 0
    print(format_table(results))
    print(f"{len(cases)} cases in {time.perf_counter() - start:.1f} s with {args.jobs} process(es)")
    if args.verbose:
        for r in results:
            if r.built and r.status != "match":
                print(f"{r.name}: {r.status}: {r.detail}")
    if args.json:
        Path(args.json).write_text(rows)
    return 0
