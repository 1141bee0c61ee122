"""What a saved program takes and returns, as a server must declare it: names, dtypes, dims,
and whether dim 0 is a batch the server may gather requests into.

Read from the program's graph (its placeholders' and outputs' example values), without
running or deserialising any engine, so writing a Triton repository or starting a server
costs no TensorRT work.
"""
from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from plugtrt.errors import PlugtrtError

TRITON_DTYPES = {
    torch.float32: "TYPE_FP32", torch.float16: "TYPE_FP16", torch.bfloat16: "TYPE_BF16",
    torch.float64: "TYPE_FP64", torch.int64: "TYPE_INT64", torch.int32: "TYPE_INT32",
    torch.int16: "TYPE_INT16", torch.int8: "TYPE_INT8", torch.uint8: "TYPE_UINT8", torch.bool: "TYPE_BOOL",
}


@attrs.frozen(kw_only=True)
class TensorIO:
    """One input or output of a program."""

    name: str
    dtype: torch.dtype
    dims: tuple[int, ...]
    """The full dims, -1 where dynamic."""
    symbols: tuple[str | None, ...]
    """Each dim's size symbol, None where static."""
    device: torch.device = torch.device("cpu")
    """Where the program takes (or returns) it: a program exported on a GPU takes CUDA tensors."""

    @property
    def triton_dtype(self) -> str:
        if self.dtype not in TRITON_DTYPES:
            raise PlugtrtError(f"{self.name} is {self.dtype}, which Triton has no type for")
        return TRITON_DTYPES[self.dtype]


@attrs.frozen(kw_only=True)
class ProgramIO:
    """A program's inputs and outputs, and its batch dim."""

    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    batch: tuple[int, int] | None
    """(min, max) of dim 0 where it is one dynamic size shared by every input and output (the
    server may then gather requests along it); None otherwise."""

    def dims(self, tensor: TensorIO) -> tuple[int, ...]:
        """``tensor``'s dims as a batching server declares them: without dim 0 when batched."""
        return tensor.dims[1:] if self.batch is not None else tensor.dims


def _tensor_io(name: str, value: torch.Tensor) -> TensorIO:
    dims, symbols = [], []
    for size in value.shape:
        if isinstance(size, torch.SymInt):
            dims.append(-1)
            symbols.append(str(size.node.expr))
        else:
            dims.append(int(size))
            symbols.append(None)
    return TensorIO(name=name, dtype=value.dtype, dims=tuple(dims), symbols=tuple(symbols),
                    device=value.device)


def program_io(program: ExportedProgram) -> ProgramIO:
    """Read ``program``'s user inputs and outputs. Inputs keep the program's names; outputs
    are ``output__<i>`` (Triton's convention for unnamed outputs). A program that takes or
    returns anything but a flat list of tensors is refused, naming what to change."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = []
    for spec in program.graph_signature.input_specs:
        if spec.kind != InputKind.USER_INPUT:
            continue
        value = placeholders[spec.arg.name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise PlugtrtError(f"the program's input {spec.arg.name!r} is not a tensor; a served "
                               "program takes tensors only: export a wrapper that fixes the others")
        inputs.append(_tensor_io(spec.arg.name, value))
    output = next(n for n in program.graph.nodes if n.op == "output")
    values = [n.meta.get("val") if isinstance(n, torch.fx.Node) else n for n in output.args[0]]
    if not all(isinstance(v, torch.Tensor) for v in values):
        raise PlugtrtError("the program returns something that is not a tensor; a served program "
                           "returns tensors only: export a wrapper that returns them")
    outputs = [_tensor_io(f"output__{i}", v) for i, v in enumerate(values)]
    return ProgramIO(inputs=tuple(inputs), outputs=tuple(outputs), batch=_batch(program, inputs + outputs))


def _batch(program: ExportedProgram, tensors: Sequence[TensorIO]) -> tuple[int, int] | None:
    first = {t.symbols[0] if t.dims else None for t in tensors}
    if len(first) != 1 or None in first:
        return None
    symbol = first.pop()
    for key, ranges in program.range_constraints.items():
        if str(key) == symbol:
            upper = int(ranges.upper) if ranges.upper.is_finite else None
            if upper is None:
                return None
            return max(int(ranges.lower), 1), upper
    return None


def program_constant(program: ExportedProgram, placeholder: torch.fx.Node) -> torch.Tensor:
    """The buffer or constant a placeholder of ``program`` stands for."""
    spec = next(s for s in program.graph_signature.input_specs if s.arg.name == placeholder.name)
    return program.state_dict[spec.target] if spec.target in program.state_dict \
        else program.constants[spec.target]
