"""``python -m plugtrt triton``: a Triton Inference Server model repository for a saved program.

A program that is one engine built with full TensorRT, and nothing else, becomes a
``tensorrt_plan`` model: Triton's TensorRT backend runs ``1/model.plan`` itself. Anything else
(ops left in PyTorch, several engines, or TensorRT-RTX plans, which Triton's TensorRT backend
cannot load) becomes a Python-backend model: ``1/model.py`` loads ``1/program.pt2`` through
plugtrt and runs it, gathering the requests of a dynamic batch into one call.

``config.pbtxt`` declares the real names, dtypes and dims; when dim 0 is one dynamic size of
every input and output, the model batches (``max_batch_size``, ``dynamic_batching``).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from plugtrt import engine_op
from plugtrt.errors import PlugtrtError
from plugtrt.program_io import TRITON_DTYPES, ProgramIO, TensorIO, program_constant, program_io

ENGINE_OP = "plugtrt.execute_engine.default"

PYTHON_MODEL = '''"""Triton Python-backend model written by `python -m plugtrt triton`: runs program.pt2
(a plugtrt.export program) through plugtrt. The requests of a dynamic batch are concatenated
along dim 0 and run as one call."""
import json
from pathlib import Path

import torch
import triton_python_backend_utils as pb_utils

import plugtrt


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        program = plugtrt.load(here / "program.pt2")
        self.devices = [n.meta["val"].device for n in program.graph.nodes if n.op == "placeholder"
                        and n.name in program.graph_signature.user_inputs]
        self.program = program.module()
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]
        self.batched = config.get("max_batch_size", 0) > 0

    def execute(self, requests):
        feeds = [[torch.from_numpy(pb_utils.get_input_tensor_by_name(r, name).as_numpy()).to(device)
                  for name, device in zip(self.inputs, self.devices)] for r in requests]
        if self.batched:
            sizes = [f[0].shape[0] for f in feeds]
            with torch.no_grad():
                result = self._run([torch.cat(column) for column in zip(*feeds)])
            parts = zip(*(torch.split(y, sizes) for y in result))
        else:
            with torch.no_grad():
                parts = [self._run(f) for f in feeds]
        return [pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor(name, y.contiguous().cpu().numpy()) for name, y in zip(self.outputs, part)])
                for part in parts]

    def _run(self, tensors):
        result = self.program(*tensors)
        return list(result) if isinstance(result, (tuple, list)) else [result]
'''


def _tensor_block(kind: str, tensors: list[tuple[str, str, tuple[int, ...]]]) -> str:
    entries = []
    for name, dtype, dims in tensors:
        entries.append(f'  {{\n    name: "{name}"\n    data_type: {dtype}\n'
                       f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')
    return f"{kind} [\n" + ",\n".join(entries) + "\n]\n"


def config_text(name: str, platform: str | None, backend: str | None,
                inputs: list[tuple[str, str, tuple[int, ...]]], outputs: list[tuple[str, str, tuple[int, ...]]],
                max_batch_size: int, instances: int, kind: str) -> str:
    """A ``config.pbtxt`` in Triton's text format of ``ModelConfig``."""
    lines = [f'name: "{name}"']
    if platform:
        lines.append(f'platform: "{platform}"')
    if backend:
        lines.append(f'backend: "{backend}"')
    lines.append(f"max_batch_size: {max_batch_size}")
    text = "\n".join(lines) + "\n" + _tensor_block("input", inputs) + _tensor_block("output", outputs)
    text += f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]\n"
    if max_batch_size > 0:
        text += "dynamic_batching { }\n"
    return text


def _single_full_tensorrt_engine(program: torch.export.ExportedProgram) -> torch.fx.Node | None:
    """The engine node where the program is exactly one engine built with full TensorRT, its
    inputs the program's inputs and its outputs the program's outputs, in order; else None."""
    calls = [n for n in program.graph.nodes if n.op == "call_function"]
    engines = [n for n in calls if str(n.target) == ENGINE_OP]
    if len(engines) != 1 or any(n.target.__module__ != "_operator" for n in calls if n is not engines[0]):
        return None
    node = engines[0]
    call = engine_op.EngineCall.from_json(node.args[3])
    if not call.tensorrt.startswith("tensorrt=="):
        return None
    users = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    if [a.name for a in node.args[0]] != users:
        return None
    output = next(n for n in program.graph.nodes if n.op == "output").args[0]
    if not all(o.op == "call_function" and o.args[0] is node and o.args[1] == i for i, o in enumerate(output)):
        return None
    return node


def _plan_tensors(artifact, io: ProgramIO) -> tuple[list, list]:
    """The plan model's tensors: the engine's own names and boundary dtypes."""
    def row(spec, tensor: TensorIO):
        return spec.name, TRITON_DTYPES[spec.engine_dtype], io.dims(tensor)
    return ([row(s, t) for s, t in zip(artifact.inputs, io.inputs)],
            [row(s, t) for s, t in zip(artifact.outputs, io.outputs)])


def write_repository(program_path: str | Path, repository: str | Path, name: str,
                     max_batch_size: int | None = None, instances: int = 1) -> Path:
    """Write model ``name`` into ``repository``; returns the model's directory."""
    program_path = Path(program_path)
    program = torch.export.load(program_path)
    io = program_io(program)
    if max_batch_size is None:
        max_batch_size = io.batch[1] if io.batch else 0
    elif max_batch_size > 0 and io.batch is None:
        raise PlugtrtError(f"--max-batch-size {max_batch_size}: the program's dim 0 is not one dynamic "
                           "batch size of every input and output; export it with a dynamic batch "
                           "(dynamic_shapes={'x': {0: Dim('batch', max=N)}}) or leave the option out")
    elif io.batch is not None and max_batch_size > io.batch[1]:
        raise PlugtrtError(f"--max-batch-size {max_batch_size} exceeds the batch range the program's "
                           f"engines were built for ({io.batch[0]}..{io.batch[1]}); use at most {io.batch[1]}")
    batched = io if max_batch_size > 0 else ProgramIO(inputs=io.inputs, outputs=io.outputs, batch=None)
    model = Path(repository) / name
    version = model / "1"
    if version.exists():
        shutil.rmtree(version)
    version.mkdir(parents=True)
    engine = _single_full_tensorrt_engine(program)
    if engine is not None:
        payload = program_constant(program, engine.args[1])
        call = engine_op.EngineCall.from_json(engine.args[3])
        artifact = engine_op.unpack_artifact(payload, call.sha256)
        (version / "model.plan").write_bytes(bytes(artifact.plan))
        inputs, outputs = _plan_tensors(artifact, batched)
        text = config_text(name, "tensorrt_plan", None, inputs, outputs, max_batch_size, instances, "KIND_GPU")
    else:
        shutil.copyfile(program_path, version / "program.pt2")
        (version / "model.py").write_text(PYTHON_MODEL)
        rows = lambda ts: [(t.name, t.triton_dtype, batched.dims(t)) for t in ts]  # noqa: E731
        text = config_text(name, None, "python", rows(io.inputs), rows(io.outputs), max_batch_size,
                           instances, "KIND_CPU")
    (model / "config.pbtxt").write_text(text)
    return model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugtrt triton",
                                     description="write a Triton model repository for a saved plugtrt.export program")
    parser.add_argument("program", help="the saved program (torch.export.save / plugtrt.save)")
    parser.add_argument("--repository", required=True, help="the model repository directory")
    parser.add_argument("--name", required=True, help="the model's name")
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help="largest batch Triton gathers (default: the program's batch range; 0 without one)")
    parser.add_argument("--instances", type=int, default=1, help="model instances (default 1)")
    args = parser.parse_args(argv)
    try:
        model = write_repository(args.program, args.repository, args.name, args.max_batch_size, args.instances)
    except (PlugtrtError, FileNotFoundError) as exc:
        print(f"plugtrt triton: {exc}", file=sys.stderr)
        return 2
    kind = "tensorrt_plan" if (model / "1" / "model.plan").exists() else "python backend"
    print(f"wrote {model} ({kind})")
    return 0
