"""Stage 1: trace a dynamo graph to an aten inference graph, with weights frozen into it.

Parameters and buffers arrive from dynamo as inputs. Those the graph only reads become
``get_attr`` constants of the traced graph (sharing storage with the model's tensors, so
PyTorch fallback blocks see in-place updates, and engines are rebuilt when the backend
notices them). Inputs the graph writes (a step counter, a KV cache) are state, not weights:
they stay inputs, the traced graph returns their new values after its own outputs, and the
backend copies those into the real tensors in PyTorch.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.fx
import torch.fx.traceback as fx_traceback
import torch.utils._pytree as pytree
from torch._dispatch.python import enable_python_dispatcher
from torch._functorch.aot_autograd import aot_export_joint_simple
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functionalize
from torch.fx.experimental.proxy_tensor import make_fx

logger = logging.getLogger("plugtrt")

FROZEN_PREFIX = "_frozen_"

# dynamo's source name of a module's parameter or registered buffer: L['self']._buffers['n']
_MODULE_WEIGHT = re.compile(r"\._(parameters|buffers)\[")


def input_names(gm: torch.fx.GraphModule) -> list[str]:
    """A name per graph input, as the user knows it: a parameter's or buffer's path in the model
    (``seq.0.weight``), a forward argument's name (``x``); else the placeholder's own name."""
    names = []
    for node in (n for n in gm.graph.nodes if n.op == "placeholder"):
        source = getattr(node.meta.get("grapharg"), "source", None)
        name = getattr(source, "name", "")
        name = name() if callable(name) else name
        name = re.sub(r"^L\['[^']+'\]\.", "", name or "")  # the module itself: self, or fn
        name = re.sub(r"_(?:modules|parameters|buffers)\['([^']+)'\]", r"\1", name)
        name = re.sub(r"^L\['([^']+)'\]", r"\1", name)
        names.append(name or node.name)
    return names


def module_weight_indices(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> tuple[int, ...]:
    """Inputs that are parameters or registered buffers of the model: the candidates to freeze.

    dynamo marks these static, but ``torch._dynamo.mark_static_address`` marks a user's tensor
    the same way; a static tensor that is neither a Parameter nor reached through a module's
    ``_parameters``/``_buffers`` (a KV cache passed in or kept as a plain attribute) is state
    the user means to change between calls, so it stays an input.

    An inference tensor (a weight created or loaded under ``torch.inference_mode()``) stays an
    input too: it has no version counter, so a write to it after compiling could not be noticed
    and a frozen copy would go stale. As an input it is read on every call.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    indices = []
    for i, (node, value) in enumerate(zip(placeholders, example_inputs)):
        if not isinstance(value, torch.Tensor) or value.is_inference():
            continue
        if node.meta.get("tensor_dict", {}).get("_dynamo_static_input_type") is None:
            continue
        source = getattr(node.meta.get("grapharg"), "source", None)
        name = getattr(source, "name", "")
        name = name() if callable(name) else name  # a method in older torch, a property in 2.14
        if isinstance(value, torch.nn.Parameter) or _MODULE_WEIGHT.search(name):
            indices.append(i)
    return tuple(indices)


_METADATA_WRITES = frozenset({"t_", "transpose_", "swapdims_", "swapaxes_", "as_strided_", "set_",
                              "squeeze_", "unsqueeze_", "resize_", "resize_as_"})
_RESIZES = frozenset({"resize_", "resize_as_"})


def check_metadata_writes(gm: torch.fx.GraphModule) -> None:
    """Raise where ``gm`` changes an input's shape or strides in place other than by resizing it.

    The backend writes a graph's writes back into the real inputs: values with ``copy_``, after
    a ``resize_`` to the new shape where the graph resized the input, which leaves it as eager
    does (``resize_`` keeps the storage and makes the sizes contiguous). A transpose or
    ``as_strided_``/``set_`` in place leaves eager's input a new view of its storage, values
    unmoved, which a copy cannot reproduce: such a graph runs in PyTorch (the caller's fallback
    warning gives this reason)."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for node in gm.graph.nodes:
        name = getattr(node.target, "_opname", None) or getattr(node.target, "__name__", node.target)
        if name in _METADATA_WRITES - _RESIZES and node.args and node.args[0] in placeholders:
            raise RuntimeError(
                f"the graph changes the shape or strides of input {placeholders.index(node.args[0])} "
                f"in place ({name}); plugtrt writes back values and resize_'s shape only, so the "
                "graph runs in PyTorch (apply the op to a clone, or outside the compiled function)")


def trace_to_aten(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], weights: Sequence[int],
                  decompositions: Mapping[Any, Any], *, symbolic: bool = False,
                  keep_whole: Collection[Any] = ()) -> tuple[torch.fx.GraphModule, tuple[int, ...]]:
    """The aten graph of ``gm`` on these inputs, specialised to their shapes, and the inputs the
    graph writes; with ``symbolic``, traced on the fake values dynamo recorded, so sizes stay
    symbols (``sym_size`` nodes and ``SymInt`` values in the nodes' meta) of dynamo's own shape
    environment.

    One functionalising trace (``make_fx`` over ``torch.func.functionalize``, with the python
    dispatcher that AOT autograd also uses, so the same aten ops come out) finds the writes and
    builds the graph at once: half the time of AOT autograd's export, which traces twice and
    needs the writes found by a third run. Two cases still take that slower way
    (:func:`_trace_with_aot`): symbolic graphs, because on dynamo's fakes this trace specialises
    dynamo's size symbols (a ``mark_dynamic`` dim fails with a constraint violation) and AOT's
    does not; and graphs this trace leaves a write in (``as_strided_`` on an intermediate).

    Non-tensor inputs (sizes dynamo passes as ints or ``SymInt``s) are baked in: a symbol is
    then read from the tensor that carries it. The returned graph takes the non-frozen tensor
    inputs, in order, and returns ``gm``'s outputs followed by the new value of each written
    input; ``weights`` that the graph does not write are frozen into it.

    ``keep_whole`` lists ops (those with a converter); the resampling ones among them
    (``upsample_*``), which torch's own Python kernels on the Autograd and
    CompositeImplicitAutograd keys split into ``_unsafe_index`` and arithmetic, reach the
    converters whole (one RESIZE layer) when tracing is not symbolic: there the C++ upsample
    kernels would specialise every size (a batch marked dynamic becomes a constant). A node
    every converter declines is decomposed later, per node, by a decomposition record.
    """
    if symbolic:
        return _trace_with_aot(gm, example_inputs, weights, decompositions, symbolic=True, keep_whole=())
    tensor_slots = [i for i, x in enumerate(example_inputs) if isinstance(x, torch.Tensor)]
    fixed = {i: x for i, x in enumerate(example_inputs) if not isinstance(x, torch.Tensor)}

    def run(*tensors: torch.Tensor) -> Any:
        args = dict(fixed)
        args.update(zip(tensor_slots, tensors))
        return torch.fx.Interpreter(gm).run(*(args[i] for i in range(len(example_inputs))))

    tensors = [example_inputs[i].detach() for i in tensor_slots]
    # a fresh fake mode, not dynamo's: tracing inside dynamo's TracingContext fakifies the
    # parameters in dynamo's ShapeEnv, whose source-less symbols then break its guards
    with torch._guards.tracing(None), torch.no_grad(), fx_traceback.preserve_node_meta(), \
            enable_python_dispatcher(), _python_decompositions_suspended(keep_whole):
        aten = make_fx(functionalize(run, remove="mutations"), decomposition_table=dict(decompositions),
                       tracing_mode="fake", _allow_non_fake_inputs=True)(*tensors)
    try:
        written = _writes_as_outputs(aten)
    except _LeftInPlace as exc:
        logger.debug("tracing again through AOT autograd: %s", exc)
        return _trace_with_aot(gm, example_inputs, weights, decompositions, symbolic=False,
                               keep_whole=keep_whole)
    mutated = tuple(tensor_slots[p] for p in written)
    _copy_stack_traces(gm, aten)
    frozen = [i for i in weights if i not in mutated]
    _freeze(aten, [tensor_slots.index(i) for i in frozen], [example_inputs[i] for i in frozen])
    return aten, mutated


class _LeftInPlace(Exception):
    """The functionalising trace left a write (``as_strided_`` on an intermediate, a training
    batch norm's running statistics) that AOT autograd's own functionalisation handles."""


def _writes_as_outputs(aten: torch.fx.GraphModule) -> list[int]:
    """Turn functionalisation's final ``copy_(input, new_value)`` nodes into extra outputs (the
    backend writes them back in PyTorch, as eager would); returns the written placeholders'
    positions, in order. Any other write left in the graph raises :class:`_LeftInPlace`."""
    placeholders = [n for n in aten.graph.nodes if n.op == "placeholder"]
    output = next(n for n in aten.graph.nodes if n.op == "output")
    writes = {}
    for node in list(aten.graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten.copy_.default \
                and node.args[0] in placeholders:
            writes[placeholders.index(node.args[0])] = node.args[1]
            node.replace_all_uses_with(node.args[1])
            aten.graph.erase_node(node)
    positions = sorted(writes)
    if positions:
        output.args = ((*output.args[0], *(writes[p] for p in positions)),)
    aten.graph.eliminate_dead_code()
    for node in aten.graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op == "call_function" and schema is not None and schema.is_mutable:
            raise _LeftInPlace(f"torch.func.functionalize left a write in place: {node.format_node()}")
    aten.recompile()
    return positions


def mutated_input_indices(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> tuple[int, ...]:
    """Inputs the graph writes in place (directly or through a view), found by running it on
    fake copies and reading their version counters; the real inputs are never touched."""
    mode = FakeTensorMode()
    with torch._guards.tracing(None), torch.no_grad():
        fakes = [mode.from_tensor(x) if isinstance(x, torch.Tensor) else x for x in example_inputs]
        before = [x._version if isinstance(x, torch.Tensor) else None for x in fakes]
        with mode:
            torch.fx.Interpreter(gm).run(*fakes)
    return tuple(i for i, (x, v) in enumerate(zip(fakes, before))
                 if isinstance(x, torch.Tensor) and x._version != v)


def _trace_with_aot(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], weights: Sequence[int],
                    decompositions: Mapping[Any, Any], *, symbolic: bool, keep_whole: Collection[Any]
                    ) -> tuple[torch.fx.GraphModule, tuple[int, ...]]:
    """:func:`trace_to_aten` through AOT autograd's export: for a graph with symbolic sizes (on
    the fake values dynamo recorded, so sizes stay symbols of dynamo's own shape environment),
    and for what the one-pass trace leaves in place. The export refuses graphs that write their
    inputs: the writes are found first by a fake run, and made to clones whose final values
    become extra outputs."""
    # a size read with int() would add a guard specialising it: run on the example values
    hinted = [int(a.node.hint) if isinstance(a, torch.SymInt) else a for a in example_inputs]
    mutated = mutated_input_indices(gm, hinted)
    frozen = [i for i in weights if i not in mutated]
    if symbolic:
        traced = [n.meta["example_value"] for n in gm.graph.nodes if n.op == "placeholder"]
    else:
        traced = list(example_inputs)
    tensor_slots = [i for i, x in enumerate(traced) if isinstance(x, torch.Tensor)]
    fixed = {i: x for i, x in enumerate(traced) if not isinstance(x, torch.Tensor)}

    def run(*tensors: torch.Tensor) -> Any:
        args = dict(fixed)
        args.update(zip(tensor_slots, tensors))
        # AOT export refuses graphs that write their inputs: the writes go to clones, whose
        # final values become extra outputs for the backend to copy back.
        for i in mutated:
            args[i] = args[i].clone()
        outputs = torch.fx.Interpreter(gm).run(*(args[i] for i in range(len(example_inputs))))
        if mutated:  # dynamo's graphs return a tuple
            outputs = (*outputs, *(args[i] for i in mutated))
        # AOT export refuses outputs that alias inputs (``return x.view(...)``); it traces
        # these clones instead, and _drop_output_clones removes them again.
        return pytree.tree_map_only(torch.Tensor, torch.clone, outputs)

    tensors = [traced[i].detach() for i in tensor_slots]
    with torch._guards.tracing(None), torch.no_grad(), fx_traceback.preserve_node_meta(), \
            _python_decompositions_suspended(keep_whole):
        aten = aot_export_joint_simple(run, tensors, trace_joint=False, decompositions=dict(decompositions))
    _drop_output_clones(aten)
    _copy_stack_traces(gm, aten)
    _freeze(aten, [tensor_slots.index(i) for i in frozen], [example_inputs[i] for i in frozen])
    return aten, mutated


_SUSPENDED_KEYS = (torch._C.DispatchKey.Autograd, torch._C.DispatchKey.CompositeImplicitAutograd)
# The ops kept whole where a converter takes them: resampling, which torch splits in Python
# into gathers of computed indices. Others (matmul, native_batch_norm) keep torch's split,
# which the converters and lowering passes expect.
_KEEP_WHOLE = re.compile(r"aten\._?upsample_")
_bypassing = threading.local()
"""``ops``: the ops whose Python kernels this thread's trace bypasses (empty elsewhere)."""
_install_lock = threading.Lock()


def _bypassable_keys(op: Any) -> list[Any]:
    """The keys where ``op`` has both torch's Python kernel and a C++ kernel to bypass it with
    (``upsample_*.vec``: CompositeImplicitAutograd; ``upsample_*.default``: Autograd). At the
    other key the Python kernel is never the one resolved, the C++ kernels taking precedence."""
    return [k for k in _SUSPENDED_KEYS
            if k in op.py_kernels and torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), k)]


def _install_bypass(op: Any) -> None:
    """Put, once per op and key, a kernel in front of torch's Python kernel that calls it, except
    in a thread whose trace bypasses ``op`` (see :func:`_python_decompositions_suspended`),
    where it calls the C++ kernel at the same key: what dispatch would do without the Python
    kernel. Other threads see torch's behaviour unchanged."""
    for key in _bypassable_keys(op):
        python_kernel = op.py_kernels[key]
        if getattr(python_kernel, "_plugtrt_bypass", False):
            continue

        def kernel(*args: Any, _op=op, _key=key, _python=python_kernel, **kwargs: Any) -> Any:
            if _op in getattr(_bypassing, "ops", ()):
                return _op._op_dk(_key, *args, **kwargs)
            return _python(*args, **kwargs)

        kernel._plugtrt_bypass = True
        op.py_kernels[key] = kernel
        op._dispatch_cache.clear()  # it may hold the Python kernel, cached before


@contextlib.contextmanager
def _python_decompositions_suspended(ops: Collection[Any]) -> Iterator[None]:
    """While the block runs, in this thread only, dispatch the resampling ops among ``ops`` to
    their C++ kernels instead of torch's Python ones (on the autograd and composite keys), so
    they are recorded whole. Another thread tracing at the same time (a symbolic trace,
    dynamo, export) still gets torch's Python kernels. The thread's previous set is restored
    however the block ends."""
    before = getattr(_bypassing, "ops", frozenset())
    try:
        chosen = frozenset(op for op in ops if _KEEP_WHOLE.match(str(op)) and _bypassable_keys(op))
        with _install_lock:
            for op in chosen:
                _install_bypass(op)
        _bypassing.ops = before | chosen
        yield
    finally:
        _bypassing.ops = before


def _drop_output_clones(aten: torch.fx.GraphModule) -> None:
    """Remove the one clone ``run`` put on each output: past tracing, returning a view of an
    input is legal, and is what eager PyTorch returns."""
    output = next(n for n in aten.graph.nodes if n.op == "output")

    def unclone(value: Any) -> Any:
        if isinstance(value, torch.fx.Node) and value.target is torch.ops.aten.clone.default:
            return value.args[0]
        return value

    output.args = pytree.tree_map(unclone, output.args)
    aten.graph.eliminate_dead_code()
    aten.recompile()


def _copy_stack_traces(source: torch.fx.GraphModule, aten: torch.fx.GraphModule) -> None:
    """Give each aten node the user stack trace of the dynamo node it came from."""
    traces = {n.name: n.meta.get("stack_trace") for n in source.graph.nodes if n.meta.get("stack_trace")}
    for node in aten.graph.nodes:
        if node.meta.get("stack_trace"):
            continue
        pending = list(node.meta.get("from_node") or ())
        while pending:
            origin = pending.pop(0)
            if origin.name in traces:
                node.meta["stack_trace"] = traces[origin.name]
                break
            pending.extend(origin.from_node or ())


def _freeze(aten: torch.fx.GraphModule, positions: Sequence[int], tensors: Sequence[torch.Tensor]) -> None:
    placeholders = [n for n in aten.graph.nodes if n.op == "placeholder"]
    for position, tensor in zip(positions, tensors):
        node = placeholders[position]
        name = f"{FROZEN_PREFIX}{position}"
        aten.register_buffer(name, tensor.detach(), persistent=False)
        with aten.graph.inserting_before(node):
            const = aten.graph.get_attr(name)
        const.meta.update(node.meta)
        node.replace_all_uses_with(const)
        aten.graph.erase_node(node)
    aten.graph.lint()
    aten.recompile()


def specialise_scalars(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]
                       ) -> tuple[torch.fx.GraphModule, dict[int, float]]:
    """A copy of ``gm`` with the python scalars dynamo passes as 0-d tensors baked in.

    With ``dynamic=True`` dynamo does not specialise float attributes of a module (an epsilon,
    a dropout probability): it passes each as a 0-d tensor and reads it with ``.item()``, a
    data-dependent value that a symbolic trace cannot know. TensorRT needs these as constants,
    so each ``.item()`` becomes its current value; the returned ``{input index: value}`` is
    what a call must still match (the backend recompiles when one changes).
    """
    gm = torch.fx.GraphModule(gm, copy.deepcopy(gm.graph))
    baked: dict[int, float] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for index, node in enumerate(placeholders):
        items = [u for u in node.users if u.op == "call_method" and u.target == "item"]
        example = example_inputs[index]
        # the .item() reads are dynamo's own (it breaks the graph on a user's): the grapharg's
        # pass_arg_as_tensor says the same on torch 2.14, but not on every version
        if not items or not isinstance(example, torch.Tensor) or example.dim() != 0:
            continue
        value = example.item()
        for item in items:
            for user in list(item.users):
                user.args, user.kwargs = pytree.tree_map(
                    lambda a, item=item: value if a is item else a, (user.args, user.kwargs))
            gm.graph.erase_node(item)
        baked[index] = value
    gm.recompile()
    return gm, baked
