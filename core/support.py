"""Stage 3: which aten nodes can go to TensorRT, and why not for the others."""
from __future__ import annotations

import operator
from collections import Counter
from typing import Any

import torch
import torch.fx

from plugtrt.conversion import arg, constant_value, describe, node_tensors, val
from plugtrt.shapes import is_dynamic, is_size_node, unbacked_symbols

aten = torch.ops.aten

# What TensorRT's DataType can hold (both flavours); float64 converts under truncate_long_and_double.
_TENSORRT_DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64,
                              torch.int8, torch.uint8, torch.bool, torch.float8_e4m3fn})

_SAME_DTYPE_OPS = frozenset({
    aten.mm, aten.bmm, aten.addmm, aten.baddbmm, aten.addbmm, aten.mv, aten.addmv, aten.dot,
    aten.vdot, aten.matmul, aten.linear, aten.convolution, aten._convolution, aten.conv1d,
    aten.conv2d, aten.conv3d, aten.conv_transpose1d, aten.conv_transpose2d, aten.conv_transpose3d,
    aten.prelu, aten._prelu_kernel})
"""Ops (overload packets) whose eager kernels refuse tensor operands of different dtypes
("mat1 and mat2 must have the same dtype") where elementwise ops promote. Tracing lets such a
node through (fake kernels do not check), and a converter would cast one operand and return an
answer where eager raises: these nodes run in PyTorch, which raises eager's own error."""


def _operand_dtypes(node: torch.fx.Node) -> set[torch.dtype]:
    """The dtypes of the tensors ``node`` reads, frozen weights (``get_attr``) included."""
    dtypes = set()
    for arg in node.all_input_nodes:
        value = constant_value(arg) if arg.op == "get_attr" else val(arg)
        if isinstance(value, torch.Tensor):
            dtypes.add(value.dtype)
    return dtypes


def _draws(node: torch.fx.Node) -> bool:
    """The node draws random numbers: a ``nondeterministic_seeded`` op (rand, bernoulli,
    dropout ...) other than one whose randomness is switched off: a dropout or rrelu in its
    inference form (``train=False``, ``training=False``), a dropout with ``p=0``, or an
    attention kernel with ``dropout_p=0`` (the CPU flash kernel that every sdpa on CPU becomes carries the tag)."""
    if torch.Tag.nondeterministic_seeded not in getattr(node.target, "tags", ()):
        return False
    schema = {a.name: (i, a.default_value) for i, a in enumerate(node.target._schema.arguments)}
    switches = [("train", False), ("training", False), ("dropout_p", 0.0)]
    if "train" in schema:
        switches.append(("p", 0.0))  # a dropout's probability
    for name, off in switches:
        if name in schema and arg(node.args, node.kwargs, schema[name][0], name, schema[name][1]) == off:
            return False
    return True


class SupportCheck:
    """``check(node) -> bool`` for partitioners; remembers the reason for every refusal."""

    def __init__(self, registry: Any, settings: Any):
        self.registry = registry
        self.settings = settings
        self.reasons: dict[torch.fx.Node, str] = {}

    def __call__(self, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return False
        if node.target is operator.getitem:
            producer = node.args[0]
            return isinstance(producer, torch.fx.Node) and self(producer)
        if is_size_node(node):
            # sizes are bookkeeping: PyTorch computes them (cheaply, from shapes), and an engine
            # that reads one recomputes it from its own inputs' shapes; kept out of blocks, they
            # cannot tie the blocks around them together
            return self._data_dependent_size(node)
        reason = self._refusal(node)
        if reason is not None:
            self.reasons[node] = reason
            return False
        return True

    def _data_dependent_size(self, node: torch.fx.Node) -> bool:
        """A size that mentions a data-dependent symbol (``u0``, the length of ``x[mask]``) cannot
        move up to the graph's inputs (:mod:`plugtrt.lowering.shared_sizes`): it is known only
        once the op that counts has run. In PyTorch it would stand between that op and the ops
        reading the size and cut their engine in two, so it goes into the block when every
        reader does (the engine computes it from the length of the non-zero layer's output)."""
        if not unbacked_symbols([node.meta["val"]]):
            return False
        return bool(node.users) and all(user.op == "call_function" and self(user) for user in node.users)

    def _refusal(self, node: torch.fx.Node) -> str | None:
        target = node.target
        names = {str(target), str(getattr(target, "overloadpacket", target))}
        if names & self.settings.torch_executed_ops:
            return "listed in torch_executed_ops"
        if not self.settings.random_ops_in_engines and _draws(node):
            return ("draws random numbers: it runs in PyTorch, so torch.manual_seed reproduces it "
                    "(random_ops_in_engines=True moves it into engines, drawing from TensorRT's "
                    "own generator)")
        if getattr(target, "overloadpacket", None) in _SAME_DTYPE_OPS and len(
                dtypes := _operand_dtypes(node)) > 1:
            return (f"reads tensors of different dtypes ({', '.join(sorted(map(str, dtypes)))}), "
                    "which eager refuses for this op: PyTorch runs it and raises eager's error "
                    "(cast the inputs to the model's dtype)")
        for value in node_tensors(node):
            if value.dtype == torch.float64 and not self.settings.truncate_long_and_double:
                return "uses torch.float64, which TensorRT lacks (set truncate_long_and_double=True)"
            if value.dtype not in _TENSORRT_DTYPES | {torch.float64}:
                return f"uses {value.dtype}, which TensorRT lacks"
        if self.registry.converter_for(node, self.settings) is None:
            if target in self.registry.converters:
                if any(is_dynamic(t.shape) for t in node_tensors(node)) and not any(
                        reg.record.supports_dynamic_shapes for reg in self.registry.converters[target]):
                    return "its converters take static shapes only, and this node has dynamic sizes"
                reasons = self.registry.decline_reasons(node, self.settings)
                return "its converters decline these arguments" + (
                    f": {'; '.join(reasons)}" if reasons else "")
            return "no converter is registered"
        return None


def coverage(gm: torch.fx.GraphModule, check: SupportCheck) -> dict[str, Any]:
    """Operator coverage of ``gm``: totals, and each unsupported op with its reason and nodes."""
    ops = [n for n in gm.graph.nodes
           if n.op == "call_function" and n.target is not operator.getitem and not is_size_node(n)]
    supported = [n for n in ops if check(n)]
    unsupported: dict[str, dict[str, Any]] = {}
    for node in ops:
        if node in check.reasons:
            entry = unsupported.setdefault(str(node.target), {"reason": check.reasons[node], "nodes": []})
            entry["nodes"].append(describe(node))
    return {"total": len(ops), "supported": len(supported),
            "supported_ops": dict(Counter(str(n.target) for n in supported)),
            "unsupported": unsupported}


def format_coverage(report: dict[str, Any], title: str) -> str:
    """The coverage table that ``debug=True, min_block_size=float('inf')`` prints."""
    total, ok = report["total"], report["supported"]
    pct = 100.0 * ok / total if total else 100.0
    lines = [f"plugtrt operator coverage of {title}: {ok}/{total} ops supported ({pct:.1f}%)"]
    for op, count in sorted(report["supported_ops"].items()):
        lines.append(f"  supported    {op:<48} x{count}")
    for op, entry in sorted(report["unsupported"].items()):
        lines.append(f"  UNSUPPORTED  {op:<48} x{len(entry['nodes'])}: {entry['reason']}")
        lines.extend(f"      at {where}" for where in entry["nodes"][:3])
    return "\n".join(lines)
