"""``python -m plugtrt serve``: serve a saved program from a real Triton Inference Server.

PyTriton (the ``serve`` extra) bundles ``tritonserver`` with its Python backend; this binds
the loaded program to it as the model's inference function. Triton itself checks every
request against the declared inputs (a wrong name, dtype or shape gets Triton's error naming
it, and the server keeps serving) and, when the program's dim 0 is a dynamic batch, gathers
concurrent requests into one call (its dynamic batcher). SIGTERM or SIGINT stops the server:
Triton answers the requests in flight, then exits.

The Python backend's stub embeds ``libpython`` found through the dynamic loader's path; where
that finds another build of the interpreter than the one running (a distribution's
libpython under a pyenv interpreter), the stub dies at start. So the interpreter's own
library directory goes first on ``LD_LIBRARY_PATH`` before Triton starts.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import sysconfig
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import torch

from plugtrt.errors import PlugtrtError
from plugtrt.program_io import ProgramIO, program_io

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def python_library_path(env: MutableMapping[str, str] = os.environ) -> str | None:
    """Put the running interpreter's ``LIBDIR`` first on ``LD_LIBRARY_PATH`` in ``env`` (this
    process's environment, which Triton inherits, by default) for the Python backend's stub;
    returns why it could not, or None."""
    libdir = sysconfig.get_config_var("LIBDIR")
    library = sysconfig.get_config_var("LDLIBRARY")
    if not libdir or not library or not (Path(libdir) / library).exists():
        return (f"this interpreter's shared libpython ({library or 'none'} in {libdir or '?'}) was not found; "
                "if Triton's Python backend fails to start, put the libpython of this interpreter "
                "(built with --enable-shared) on LD_LIBRARY_PATH")
    current = env.get("LD_LIBRARY_PATH", "")
    if current.split(":")[0] != libdir:
        env["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir
    return None


def _numpy_dtype(dtype: torch.dtype) -> Any:
    return torch.empty(0, dtype=dtype).numpy().dtype


class ProgramModel:
    """The inference function Triton calls: one list of requests per call, each a dict of
    numpy arrays by input name. With batching, the requests are concatenated along dim 0 and
    run as one call of the program, and the results split again."""

    def __init__(self, module: torch.nn.Module, io: ProgramIO, batching: bool):
        self.module, self.io, self.batching = module, io, batching
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """One call on zeros, where every dim but the batch is static (the batch is 1), so that
        each engine is deserialised before Triton takes requests."""
        shapes = []
        for t in self.io.inputs:
            dims = [1 if i == 0 and self.io.batch is not None else d for i, d in enumerate(t.dims)]
            if any(d < 0 for d in dims):
                return
            shapes.append(dims)
        self._run([torch.zeros(s, dtype=t.dtype, device=t.device) for s, t in zip(shapes, self.io.inputs)])

    def _run(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        with self._lock, torch.no_grad():
            result = self.module(*tensors)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def __call__(self, requests: Sequence[Any]) -> list[dict[str, Any]]:
        feeds = [[torch.from_numpy(request[t.name]).to(t.device) for t in self.io.inputs] for request in requests]
        if self.batching:
            sizes = [f[0].shape[0] for f in feeds]
            result = self._run([torch.cat(column) for column in zip(*feeds)])
            parts = list(zip(*(torch.split(y, sizes) for y in result)))
        else:
            parts = [self._run(f) for f in feeds]
        return [{o.name: y.contiguous().cpu().numpy() for o, y in zip(self.io.outputs, part)} for part in parts]


def serve(program_path: str | Path, name: str, *, http_port: int = 8000, grpc_port: int = 8001,
          metrics_port: int = 8002, address: str = "127.0.0.1", max_batch_size: int | None = None,
          dynamic_batching: bool = True, max_queue_delay_us: int = 100, fallback: str | None = None,
          runtime: str | None = None) -> int:
    """Serve the program until SIGTERM or SIGINT."""
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as exc:
        raise PlugtrtError(f"python -m plugtrt serve needs PyTriton ({exc}); install the serve "
                           "extra: pip install 'plugtrt[serve]'") from exc
    problem = python_library_path()
    if problem is not None:
        print(f"plugtrt serve: {problem}", file=sys.stderr)
    import plugtrt

    # a program that cannot run here fails now, clearly
    program = plugtrt.load(program_path, fallback=fallback, runtime=runtime)
    io = program_io(program)
    batching = dynamic_batching and io.batch is not None and max_batch_size != 0
    if batching:
        largest = io.batch[1] if max_batch_size is None else max_batch_size
        if largest > io.batch[1]:
            raise PlugtrtError(f"--max-batch-size {largest} exceeds the batch range the program was "
                               f"exported for ({io.batch[0]}..{io.batch[1]}); use at most {io.batch[1]}")
        config = ModelConfig(batching=True, max_batch_size=largest,
                             batcher=DynamicBatcher(max_queue_delay_microseconds=max_queue_delay_us))
        dims = io.dims
    else:
        config = ModelConfig(batching=False)
        dims = lambda t: t.dims  # noqa: E731
    tensors = lambda ts: [Tensor(name=t.name, dtype=_numpy_dtype(t.dtype), shape=dims(t)) for t in ts]  # noqa: E731
    model = ProgramModel(program.module(), io, batching)
    model.warm_up()  # engines deserialise on their first call: before the first request, not in it
    stop = threading.Event()
    for sig in _STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    triton_config = TritonConfig(http_address=address, http_port=http_port, grpc_address=address,
                                 grpc_port=grpc_port, metrics_address=address, metrics_port=metrics_port,
                                 exit_timeout_secs=20)
    triton = Triton(config=triton_config)
    try:
        triton.bind(model_name=name, infer_func=model, inputs=tensors(io.inputs),
                    outputs=tensors(io.outputs), config=config, strict=True)
        triton.run()
        print(f"plugtrt serve: model {name!r} ready on http://{address}:{http_port} and grpc "
              f"{address}:{grpc_port} ({'dynamic batching up to ' + str(config.max_batch_size) if batching else 'no batching'})",
              flush=True)
        while not stop.wait(timeout=1.0):
            if not triton.is_alive():
                print("plugtrt serve: Triton stopped on its own; see its log above", file=sys.stderr)
                return 1
    finally:
        triton.stop()
    print("plugtrt serve: stopped", flush=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugtrt serve",
                                     description="serve a saved plugtrt.export program from Triton Inference Server")
    parser.add_argument("program", help="the saved program (torch.export.save / plugtrt.save)")
    parser.add_argument("--name", required=True, help="the model's name in Triton")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help="largest batch the dynamic batcher gathers (default: the program's batch "
                             "range; 0 turns batching off)")
    parser.add_argument("--no-dynamic-batching", action="store_true",
                        help="run every request alone, as it comes")
    parser.add_argument("--max-queue-delay-us", type=int, default=100,
                        help="how long the dynamic batcher waits for more requests (default 100 us)")
    parser.add_argument("--fallback", choices=["error", "pytorch"], default=None,
                        help="where an engine cannot run here: fail (error), or run its stored PyTorch "
                             "subgraph (pytorch); default: what the program was exported with")
    parser.add_argument("--runtime", default=None,
                        help="run the engines with this runtime plugin instead of the one they were "
                             "exported for (reference: torch ops, on any machine)")
    args = parser.parse_args(argv)
    try:
        return serve(args.program, args.name, http_port=args.http_port, grpc_port=args.grpc_port,
                     metrics_port=args.metrics_port, address=args.address,
                     max_batch_size=args.max_batch_size, dynamic_batching=not args.no_dynamic_batching,
                     max_queue_delay_us=args.max_queue_delay_us, fallback=args.fallback,
                     runtime=args.runtime)
    except (PlugtrtError, FileNotFoundError) as exc:
        print(f"plugtrt serve: {exc}", file=sys.stderr)
        return 2
