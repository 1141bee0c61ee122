"""``python -m plugtrt triton``: the repository's config.pbtxt parses as Triton's ModelConfig and
declares the program's real inputs and outputs; one full-TensorRT engine becomes a
``tensorrt_plan`` model, anything else a Python-backend model."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

import plugtrt
from plugtrt.__main__ import main
from plugtrt.engine_op import unpack_artifact
from tests.test_export import ENGINE_OP, OPTIONS, Small, _rewrite_engines

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="the serve extra is not installed: pip install 'plugtrt[serve]'")
text_format = pytest.importorskip("google.protobuf.text_format")


def _parse(model_dir):
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _export(tmp_path, dynamic: bool, **options):
    torch.manual_seed(0)
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=32)}} if dynamic else None
    program = plugtrt.export(Small().eval(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=shapes,
                             options={**OPTIONS, **options})
    path = tmp_path / "small.pt2"
    torch.export.save(program, path)
    return path


def test_dynamic_batch_program_becomes_a_batching_python_model(tmp_path, capsys):
    path = _export(tmp_path, dynamic=True)
    assert main(["triton", str(path), "--repository", str(tmp_path / "repo"), "--name", "small",
                 "--instances", "3"]) == 0
    model = tmp_path / "repo" / "small"
    config = _parse(model)
    assert config.backend == "python" and not config.platform
    assert config.max_batch_size == 32 and config.HasField("dynamic_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == \
        [("x", model_config_pb2.TYPE_FP32, [3, 8, 8])]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == \
        [("output__0", model_config_pb2.TYPE_FP32, [4])]
    assert [(g.count, g.kind) for g in config.instance_group] == [(3, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
    assert (model / "1" / "program.pt2").read_bytes() == path.read_bytes()
    compile((model / "1" / "model.py").read_text(), "model.py", "exec")
    assert "python backend" in capsys.readouterr().out


def test_static_program_declares_full_dims_without_batching(tmp_path):
    path = _export(tmp_path, dynamic=False)
    assert main(["triton", str(path), "--repository", str(tmp_path / "repo"), "--name", "small"]) == 0
    config = _parse(tmp_path / "repo" / "small")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [2, 3, 8, 8] and list(config.output[0].dims) == [2, 4]


def test_single_full_tensorrt_engine_becomes_a_plan_model(tmp_path):
    """A program whose one engine records full TensorRT (exported on a datacenter GPU; here its
    record is rewritten, the plan stays the one built here) ships its plan to Triton's
    TensorRT backend, under the engine's own tensor names."""
    path = _export(tmp_path, dynamic=True)
    full = tmp_path / "full.pt2"
    _rewrite_engines(path, full, tensorrt="tensorrt==10.13.0")
    assert main(["triton", str(full), "--repository", str(tmp_path / "repo"), "--name", "plan",
                 "--max-batch-size", "8"]) == 0
    model = tmp_path / "repo" / "plan"
    config = _parse(model)
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8
    assert [(g.count, g.kind) for g in config.instance_group] == [(1, model_config_pb2.ModelInstanceGroup.KIND_GPU)]
    program = torch.export.load(full)
    node = next(n for n in program.graph.nodes if n.target is ENGINE_OP)
    spec = next(s for s in program.graph_signature.input_specs if s.arg.name == node.args[1].name)
    artifact = unpack_artifact(program.state_dict[spec.target], json.loads(node.args[3])["sha256"])
    assert (model / "1" / "model.plan").read_bytes() == bytes(artifact.plan)
    assert [i.name for i in config.input] == [s.name for s in artifact.inputs]
    assert [o.name for o in config.output] == [s.name for s in artifact.outputs]


def test_program_with_pytorch_ops_is_a_python_model_even_with_full_tensorrt(tmp_path):
    path = _export(tmp_path, dynamic=False, torch_executed_ops={"torch.ops.aten.relu.default"})
    full = tmp_path / "full.pt2"
    _rewrite_engines(path, full, tensorrt="tensorrt==10.13.0")
    assert main(["triton", str(full), "--repository", str(tmp_path / "repo"), "--name", "mixed"]) == 0
    assert _parse(tmp_path / "repo" / "mixed").backend == "python"


def test_batch_size_beyond_the_profile_is_refused(tmp_path, capsys):
    path = _export(tmp_path, dynamic=True)
    assert main(["triton", str(path), "--repository", str(tmp_path / "repo"), "--name", "small",
                 "--max-batch-size", "64"]) == 2
    assert "exceeds the batch range the program's engines were built for (1..32); use at most 32" \
        in capsys.readouterr().err


def _tritonserver(tmp_path):
    """PyTriton's bundled tritonserver, laid out as Triton expects (the Python backend's stub
    for this interpreter beside the backend), and its environment."""
    import os
    import shutil
    import sys

    import pytriton

    from plugtrt.serve import python_library_path

    dist = Path(pytriton.__file__).parent / "tritonserver"
    server = tmp_path / "tritonserver"
    shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    shutil.copy(dist / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" /
                "triton_python_backend_stub", server / "backends" / "python")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    problem = python_library_path(env)
    assert problem is None, problem
    env["LD_LIBRARY_PATH"] += f":{Path(pytriton.__file__).parent.parent / 'nvidia_pytriton.libs'}"
    return server, env


def test_the_python_model_serves_from_a_real_triton_server(tmp_path):
    """The repository as a user deploys it: tritonserver --model-repository, nothing else."""
    import signal
    import subprocess

    np = pytest.importorskip("numpy")
    http = pytest.importorskip("tritonclient.http")
    from tests.test_serve import _free_ports

    path = _export(tmp_path, dynamic=True)
    assert main(["triton", str(path), "--repository", str(tmp_path / "repo"), "--name", "small"]) == 0
    server, env = _tritonserver(tmp_path)
    http_port, grpc_port, metrics_port = _free_ports(3)
    process = subprocess.Popen(
        [str(server / "bin" / "tritonserver"), "--model-repository", str(tmp_path / "repo"),
         "--backend-directory", str(server / "backends"), "--http-address", "127.0.0.1",
         "--grpc-address", "127.0.0.1", "--metrics-address", "127.0.0.1", f"--http-port={http_port}",
         f"--grpc-port={grpc_port}", f"--metrics-port={metrics_port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = http.InferenceServerClient(f"127.0.0.1:{http_port}")
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "tritonserver did not load the model in 180 s"
            try:
                if client.is_model_ready("small"):
                    break
            except Exception:  # not listening yet
                pass
            time.sleep(0.5)
        torch.manual_seed(0)
        model = Small().eval()
        x = np.random.default_rng(0).standard_normal((5, 3, 8, 8), dtype=np.float32)
        feed = http.InferInput("x", list(x.shape), "FP32")
        feed.set_data_from_numpy(x)
        got = client.infer("small", [feed]).as_numpy("output__0")
        with torch.no_grad():
            np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
