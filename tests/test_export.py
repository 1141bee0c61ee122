"""plugtrt.export: a saved program runs its engines in a fresh process without building, and a
program whose engines cannot run here says why and how to run it anyway."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torchvision

import plugtrt
from plugtrt.engine_op import IncompatibleProgramError

ENGINE_OP = torch.ops.plugtrt.execute_engine.default
OPTIONS = {"runtime": "reference", "min_block_size": 1, "cache_built_engines": False}


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.fc(y).softmax(-1)


def _ops(program) -> list:
    return [n.target for n in program.graph.nodes if n.op == "call_function"
            and n.target.__module__ != "_operator"]


def _small_program(tmp_path, **options):
    torch.manual_seed(0)
    model = Small().eval()
    x = torch.randn(2, 3, 8, 8)
    program = plugtrt.export(model, (x,), options={**OPTIONS, **options})
    path = tmp_path / "small.pt2"
    torch.export.save(program, path)
    return model, x, path


def _rewrite_engines(path, out, **fields) -> None:
    """Save a copy of the program at ``path`` whose engines record other ``fields`` (as if it
    had been exported on another machine): no TensorRT object is faked."""
    program = torch.export.load(path)
    for node in program.graph.nodes:
        if node.target is ENGINE_OP:
            spec = json.loads(node.args[3])
            spec.update(fields)
            node.args = (*node.args[:3], json.dumps(spec))
    torch.export.save(program, out)


def test_resnet18_loads_in_a_fresh_process_without_building(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 64, 64)
    program = plugtrt.export(model, (x,), options={"runtime": "reference", "cache_built_engines": False})
    assert _ops(program) == [ENGINE_OP], "resnet18 should be one engine and nothing in PyTorch"
    path = tmp_path / "resnet18.pt2"
    plugtrt.save(program, path)
    torch.save((x, model(x).detach()), tmp_path / "io.pt")
    script = textwrap.dedent(f"""
        import torch, plugtrt
        program = torch.export.load({str(path)!r})
        x, expected = torch.load({str(tmp_path / 'io.pt')!r})
        got = program.module()(x)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        print("compiles", plugtrt.compile_count())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "compiles 0" in done.stdout


def test_dynamic_batch_becomes_the_engine_profile(tmp_path):
    torch.manual_seed(0)
    model = Small().eval()
    batch = torch.export.Dim("batch", min=1, max=16)
    program = plugtrt.export(model, (torch.randn(4, 3, 8, 8),), dynamic_shapes={"x": {0: batch}},
                             options=OPTIONS)
    assert ENGINE_OP in _ops(program)
    path = tmp_path / "dynamic.pt2"
    torch.export.save(program, path)
    loaded = plugtrt.load(path).module()
    for n in (1, 5, 16):
        x = torch.randn(n, 3, 8, 8)
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-5)


def test_ops_left_in_pytorch_stay_aten_ops(tmp_path):
    model, x, path = _small_program(tmp_path, torch_executed_ops={"torch.ops.aten.relu.default"})
    program = torch.export.load(path)
    ops = _ops(program)
    assert ENGINE_OP in ops and torch.ops.aten.relu.default in ops
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


def test_program_from_another_tensorrt_version_fails_clearly_or_falls_back(tmp_path):
    model, x, path = _small_program(tmp_path)
    other = tmp_path / "other.pt2"
    _rewrite_engines(path, other, tensorrt="tensorrt==10.3.0")
    with pytest.raises(IncompatibleProgramError,
                       match=r"built with tensorrt==10\.3\.0 and this machine has tensorrt_rtx==.*"
                             r"export the model again.*fallback='pytorch'"):
        plugtrt.load(other)
    plain = torch.export.load(other).module()  # the plain torch path fails as clearly
    with pytest.raises(IncompatibleProgramError, match="built with tensorrt==10.3.0"):
        plain(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallen = plugtrt.load(other, fallback="pytorch").module()
        torch.testing.assert_close(fallen(x), model(x))
        torch.testing.assert_close(fallen(x), model(x))
    messages = [str(w.message) for w in caught if "plugtrt" in str(w.message)]
    assert len(messages) == 1 and "stored PyTorch subgraphs run instead" in messages[0], messages


def test_fallback_from_the_environment_reaches_a_plain_torch_load(tmp_path, monkeypatch):
    model, x, path = _small_program(tmp_path)
    other = tmp_path / "other.pt2"
    _rewrite_engines(path, other, tensorrt="tensorrt==10.4.0")
    monkeypatch.setenv("PLUGTRT_PROGRAM_FALLBACK", "pytorch")
    with pytest.warns(UserWarning, match="built with tensorrt==10.4.0.*stored PyTorch subgraphs run instead"):
        torch.testing.assert_close(torch.export.load(other).module()(x), model(x))


def test_program_for_the_tensorrt_runtime_without_a_gpu(tmp_path):
    model, x, path = _small_program(tmp_path)
    gpu = tmp_path / "gpu.pt2"
    _rewrite_engines(path, gpu, runtime="tensorrt")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(IncompatibleProgramError, match=r"'tensorrt' runtime, which cannot run here.*"
                                                      r"runtime='reference'"):
        plugtrt.load(gpu)
    torch.testing.assert_close(plugtrt.load(gpu, runtime="reference").module()(x), model(x),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_program_from_another_gpu_generation_fails_clearly(tmp_path):
    torch.manual_seed(0)
    model = Small().eval().cuda()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    program = plugtrt.export(model, (x,), options={"runtime": "tensorrt", "min_block_size": 1})
    path, other = tmp_path / "gpu.pt2", tmp_path / "other.pt2"
    torch.export.save(program, path)
    torch.testing.assert_close(plugtrt.load(path).module()(x), model(x), rtol=1e-3, atol=1e-3)
    _rewrite_engines(path, other, capability="1.0")
    with pytest.raises(IncompatibleProgramError, match=r"compute capability 1\.0 and this GPU .* is \d+\.\d+"):
        plugtrt.load(other)


def test_altered_payload_is_refused_before_unpickling(tmp_path):
    model, x, path = _small_program(tmp_path)
    program = torch.export.load(path)
    name = next(k for k in program.state_dict if k.endswith(".payload"))
    program.state_dict[name][-1] ^= 1
    altered = tmp_path / "altered.pt2"
    torch.export.save(program, altered)
    with pytest.raises(IncompatibleProgramError, match="damaged or altered"):
        torch.export.load(altered).module()(x)


def test_unknown_fallback_option_names_the_choices():
    with pytest.raises(plugtrt.InvalidOptionError, match=r"fallback.*'error', 'pytorch'"):
        plugtrt.export(Small().eval(), (torch.randn(1, 3, 8, 8),), options={"fallback": "eager"})
