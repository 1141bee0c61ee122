"""``python -m plugtrt serve``: a real Triton server (PyTriton's tritonserver) on loopback answers
concurrent clients over HTTP and gRPC with eager's results, refuses bad requests and keeps
serving, and stops on SIGTERM with the requests in flight answered.

One server serves the whole module (it takes seconds to start); the SIGTERM test stops it,
so it comes last."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import plugtrt

pytest.importorskip("pytriton", reason="the serve extra is not installed: pip install 'plugtrt[serve]'")
http = pytest.importorskip("tritonclient.http", reason="the serve extra is not installed: pip install 'plugtrt[serve]'")
grpc = pytest.importorskip("tritonclient.grpc", reason="the serve extra is not installed: pip install 'plugtrt[serve]'")
from tritonclient.utils import InferenceServerException  # noqa: E402

from tests.test_export import OPTIONS, Small, _rewrite_engines, _small_program  # noqa: E402

NAME = "small"
CLIENTS, REQUESTS = 8, 25
START_SECONDS = 180
QUEUE_DELAY_US = 100_000
"""The dynamic batcher holds a batch short of the maximum this long, so the SIGTERM test can see
its requests queued in the server (Triton's pending count) before it signals."""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Server:
    """A ``python -m plugtrt serve`` process and what it printed."""

    def __init__(self, program, model):
        self.model = model
        self.http_port, self.grpc_port, self.metrics_port = _free_ports(3)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "plugtrt", "serve", str(program), "--name", NAME,
             "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
             "--metrics-port", str(self.metrics_port), "--max-queue-delay-us", str(QUEUE_DELAY_US)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if "plugtrt serve: model" in line and "ready" in line:
                self.ready.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start:\n" + "".join(self.lines[-40:]))
        # the model is loaded once Triton says so, a moment after the ready line
        client = http.InferenceServerClient(f"127.0.0.1:{self.http_port}")
        while not client.is_model_ready(NAME):
            assert time.monotonic() < deadline, "".join(self.lines[-40:])
            time.sleep(0.1)
        client.close()

    def counts(self) -> tuple[int, int]:
        """Triton's (pending, answered) request counts for the model, from its metrics endpoint."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read()
        values = {}
        for line in text.decode().splitlines():
            if f'model="{NAME}"' in line and line.startswith(("nv_inference_pending_request_count",
                                                            "nv_inference_request_success")):
                values[line.split("{", 1)[0]] = int(float(line.rsplit(" ", 1)[1]))
        return values["nv_inference_pending_request_count"], values["nv_inference_request_success"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    torch.manual_seed(0)
    model = Small().eval()
    batch = torch.export.Dim("batch", min=1, max=16)
    program = plugtrt.export(model, (torch.randn(2, 3, 8, 8),), dynamic_shapes={"x": {0: batch}},
                             options=OPTIONS)
    path = tmp_path_factory.mktemp("serve") / "small.pt2"
    torch.export.save(program, path)
    running = Server(path, model)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _request(module, x: np.ndarray):
    feed = module.InferInput("x", list(x.shape), "FP32")
    feed.set_data_from_numpy(x)
    return feed


def _client_session(module, url: str, model: torch.nn.Module, seed: int) -> list[float]:
    client = module.InferenceServerClient(url)
    rng = np.random.default_rng(seed)
    errors = []
    for i in range(REQUESTS):
        x = rng.standard_normal((1 + i % 3, 3, 8, 8), dtype=np.float32)
        got = client.infer(NAME, [_request(module, x)]).as_numpy("output__0")
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        errors.append(float(np.abs(got - expected).max()))
    client.close()
    return errors


def test_a_program_that_cannot_run_here_is_refused_before_triton_starts(tmp_path):
    _, _, path = _small_program(tmp_path)
    other = tmp_path / "other.pt2"
    _rewrite_engines(path, other, tensorrt="tensorrt==10.3.0")
    done = subprocess.run([sys.executable, "-m", "plugtrt", "serve", str(other), "--name", NAME,
                           "--http-port", "1", "--grpc-port", "1", "--metrics-port", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "built with tensorrt==10.3.0" in done.stderr
    assert "fallback='pytorch'" in done.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_concurrent_clients_get_eager_results(server, protocol):
    module, port = (http, server.http_port) if protocol == "http" else (grpc, server.grpc_port)
    with ThreadPoolExecutor(CLIENTS) as pool:
        sessions = list(pool.map(lambda seed: _client_session(module, f"127.0.0.1:{port}", server.model, seed),
                                 range(CLIENTS)))
    errors = [e for session in sessions for e in session]
    assert len(errors) == CLIENTS * REQUESTS
    assert max(errors) < 1e-5


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_get_errors_and_the_server_keeps_serving(server, protocol):
    module, port = (http, server.http_port) if protocol == "http" else (grpc, server.grpc_port)
    client = module.InferenceServerClient(f"127.0.0.1:{port}")
    good = np.ones((1, 3, 8, 8), dtype=np.float32)
    wrong_name = module.InferInput("y", [1, 3, 8, 8], "FP32")
    wrong_name.set_data_from_numpy(good)
    wrong_dtype = module.InferInput("x", [1, 3, 8, 8], "FP64")
    wrong_dtype.set_data_from_numpy(good.astype(np.float64))
    too_large = np.ones((17, 3, 8, 8), dtype=np.float32)
    for feed, message in [(wrong_name, "unexpected inference input 'y'"),
                          (_request(module, np.ones((1, 3, 4, 4), dtype=np.float32)),
                           r"unexpected shape for input 'x'.*Expected \[-1,3,8,8\], got \[1,3,4,4\]"),
                          (wrong_dtype, "data-type is 'FP64', but model 'small' expects 'FP32'"),
                          (_request(module, too_large), "batch-size must be <= 16")]:
        with pytest.raises(InferenceServerException, match=message):
            client.infer(NAME, [feed])
    with torch.no_grad():
        expected = server.model(torch.from_numpy(good)).numpy()
    np.testing.assert_allclose(client.infer(NAME, [_request(module, good)]).as_numpy("output__0"),
                               expected, rtol=1e-5, atol=1e-6)
    client.close()


def test_sigterm_answers_requests_in_flight_then_stops(server):
    client = grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    answers: list = []
    done = threading.Semaphore(0)
    x = np.ones((1, 3, 8, 8), dtype=np.float32)
    in_flight = 8  # a batch short of the maximum: the batcher holds it for QUEUE_DELAY_US

    def callback(result, error):
        answers.append(error if error is not None else result.as_numpy("output__0"))
        done.release()

    for _ in range(5):  # a round whose requests all finish between two polls is sent again
        _, answered = server.counts()
        answers.clear()
        for _ in range(in_flight):
            client.async_infer(NAME, [_request(grpc, x)], callback)
        deadline = time.monotonic() + 30
        pending = 0
        while pending < in_flight and server.counts()[1] == answered:
            assert time.monotonic() < deadline, "the requests never reached the server"
            pending = server.counts()[0]
        if pending == in_flight:
            break
        for _ in range(in_flight):
            assert done.acquire(timeout=30)
    else:
        pytest.fail("no round of requests was seen queued in the server before it answered them")
    start = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    for _ in range(in_flight):
        assert done.acquire(timeout=30)
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - start < 30
    with torch.no_grad():
        expected = server.model(torch.from_numpy(x)).numpy()
    assert all(isinstance(a, np.ndarray) for a in answers), [str(a) for a in answers if not isinstance(a, np.ndarray)]
    for a in answers:
        np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-6)
    assert "plugtrt serve: stopped" in "".join(server.lines)
    client.close()
