"""Serving benchmark: torchvision's resnet18 exported with ``plugtrt.export`` (batch dim dynamic),
served by ``python -m plugtrt serve`` from a real Triton server on loopback, driven by 1, 4 and
16 concurrent tritonclient HTTP clients each sending single images, with Triton's dynamic
batcher on and off.

Prints throughput (images/s) and p50/p99 latency per row, checks every answer against eager
PyTorch, and writes ``bench/results/serve.json``. On this CPU machine the engines are built by
TensorRT and evaluated by the ``reference`` runtime (torch ops); on a GPU with TensorRT the same
script measures the engines themselves (``--runtime tensorrt --device cuda``).

    .venv/bin/python bench/serve.py [--image-size 224] [--requests 96] [--clients 1 4 16]
"""
from __future__ import annotations

import argparse
import json
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision

RESULTS = Path(__file__).resolve().parent / "results"
NAME = "resnet18"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def export(path: Path, size: int, max_batch: int, runtime: str, device: str) -> torch.nn.Module:
    import plugtrt

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval().to(device)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    start = time.perf_counter()
    program = plugtrt.export(model, (torch.randn(4, 3, size, size, device=device),),
                             dynamic_shapes={"x": {0: batch}}, options={"runtime": runtime})
    plugtrt.save(program, path)
    print(f"exported resnet18 in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    return model


class Server:
    def __init__(self, program: Path, batching: bool, max_batch: int):
        self.http, grpc, metrics = _free_ports(3)
        flags = ["--max-batch-size", str(max_batch)] if batching else ["--no-dynamic-batching"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plugtrt", "serve", str(program), "--name", NAME,
             "--http-port", str(self.http), "--grpc-port", str(grpc), "--metrics-port", str(metrics), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.process.stdout), daemon=True).start()

    def wait_ready(self, client_module) -> None:
        client = client_module.InferenceServerClient(f"127.0.0.1:{self.http}")
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + "".join(self.log[-30:]))
            try:
                if client.is_model_ready(NAME):
                    return
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)

    def stop(self) -> float:
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - start


def drive(port: int, clients: int, requests: int, size: int, model: torch.nn.Module, device: str) -> dict:
    import tritonclient.http as http

    per_client = max(1, requests // clients)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 1, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        expected = [model(torch.from_numpy(x).to(device)).cpu().numpy() for x in images]

    def client_run(index: int) -> tuple[list[float], float]:
        client = http.InferenceServerClient(f"127.0.0.1:{port}")
        latencies, worst = [], 0.0
        for i in range(per_client):
            k = (index + i) % len(images)
            feed = http.InferInput("x", list(images[k].shape), "FP32")
            feed.set_data_from_numpy(images[k])
            start = time.perf_counter()
            got = client.infer(NAME, [feed]).as_numpy("output__0")
            latencies.append(time.perf_counter() - start)
            worst = max(worst, float(np.abs(got - expected[k]).max()))
        client.close()
        return latencies, worst

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(client_run, range(clients)))
    wall = time.perf_counter() - start
    latencies = np.array([t for run, _ in runs for t in run])
    return {"clients": clients, "requests": int(latencies.size), "seconds": wall,
            "images_per_s": latencies.size / wall, "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3),
            "max_abs_error": max(worst for _, worst in runs)}


def table(rows: list[dict]) -> str:
    lines = [f"{'batching':<10} {'clients':>7} {'requests':>8} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'max |err|':>9}"]
    for r in rows:
        lines.append(f"{r['batching']:<10} {r['clients']:>7} {r['requests']:>8} {r['images_per_s']:>9.1f} "
                     f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_abs_error']:>9.1e}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--requests", type=int, default=96, help="requests per row (split among the clients)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--runtime", default="auto", help="the engines' runtime (auto, reference, tensorrt)")
    parser.add_argument("--device", default="cpu", help="where the program runs (cuda on a GPU)")
    args = parser.parse_args()
    import tritonclient.http as http

    rows = []
    with tempfile.TemporaryDirectory(prefix="plugtrt-bench-serve-") as work:
        program = Path(work) / "resnet18.pt2"
        model = export(program, args.image_size, args.max_batch, args.runtime, args.device)
        for batching in (True, False):
            server = Server(program, batching, args.max_batch)
            try:
                server.wait_ready(http)
                for clients in args.clients:
                    row = drive(server.http, clients, max(args.requests, clients), args.image_size, model,
                                args.device)
                    row["batching"] = "dynamic" if batching else "off"
                    rows.append(row)
                    print(table([row]).splitlines()[1], flush=True)
            finally:
                stop_seconds = server.stop()
            print(f"server ({'dynamic batching' if batching else 'no batching'}) stopped on SIGTERM "
                  f"in {stop_seconds:.1f} s")
    print()
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "serve.json"
    out.write_text(json.dumps({
        "model": "resnet18", "image_size": args.image_size, "runtime": args.runtime, "device": args.device,
        "machine": platform.machine(), "processor": platform.processor(), "cpus": torch.get_num_threads(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0 if all(r["max_abs_error"] < 1e-3 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
