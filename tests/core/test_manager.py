"""Plugin discovery, validation and conflicts, on hermetic managers and fake distributions."""
from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest
import torch

import plugtrt
from plugtrt import ConverterSpec, PluginConflictError, PluginLoadError, hookimpl
from plugtrt.manager import PluginRegistry, collect, load_entry_points, registry_from

aten = torch.ops.aten
ROOT = Path(__file__).resolve().parents[2]


def _relu(ctx, node, args, kwargs):
    raise AssertionError("registration tests never convert")


def _converter_plugin(name: str, target=aten.relu.default, priority: int = 0):
    class Plugin:
        @hookimpl
        def plugtrt_converters(self):
            yield ConverterSpec(name=name, target=target, convert=_relu, priority=priority)
    return Plugin()


def test_converter_plugin_on_fresh_manager_is_picked_up(pm):
    pm.register(_converter_plugin("acme.relu"), name="acme")
    registry = PluginRegistry(pm)
    (reg,) = registry.converters[aten.relu.default]
    assert (reg.record.name, reg.plugin) == ("acme.relu", "acme")


def test_same_target_same_priority_fails_naming_both(pm):
    pm.register(_converter_plugin("acme.relu"), name="acme")
    pm.register(_converter_plugin("other.relu"), name="other")
    with pytest.raises(PluginConflictError, match=r"'acme\.relu' from acme and 'other\.relu' from other"):
        PluginRegistry(pm, strict=True)


def test_higher_priority_replaces_a_converter(pm):
    pm.register(_converter_plugin("acme.relu"), name="acme")
    pm.register(_converter_plugin("better.relu", priority=10), name="better")
    names = [r.record.name for r in PluginRegistry(pm).converters[aten.relu.default]]
    assert names == ["better.relu", "acme.relu"]


def test_duplicate_record_names_are_all_reported(pm):
    pm.register(_converter_plugin("acme.relu"), name="acme")
    pm.register(_converter_plugin("acme.relu", target=aten.sigmoid.default), name="shadow")
    with pytest.raises(PluginConflictError, match=r"'acme\.relu' from acme and shadow"):
        collect(pm, "plugtrt_converters")


def test_wrong_record_type_names_plugin_and_expected_type(pm):
    class Broken:
        @hookimpl
        def plugtrt_converters(self):
            yield {"name": "broken.relu"}
    pm.register(Broken(), name="broken")
    with pytest.raises(PluginLoadError, match=r"plugin 'broken' yielded .* yields ConverterSpec"):
        collect(pm, "plugtrt_converters")


def test_misspelt_hook_fails_at_load(pm):
    class Misspelt:
        @hookimpl
        def plugtrt_convertors(self):
            yield from ()
    pm.register(Misspelt(), name="misspelt")
    with pytest.raises(Exception, match="plugtrt_convertors"):
        pm.check_pending()


def test_packet_target_is_rejected_with_the_fix():
    with pytest.raises(TypeError, match=r"OpOverload such as aten\.mean\.dim.*ambiguous"):
        ConverterSpec(name="acme.relu", target=aten.relu, convert=_relu)


def test_third_party_failure_warns_and_is_skipped(pm, fake_distribution):
    fake_distribution("acme-trt", {"acme_trt.broken": "raise ImportError('no libacme')",
                                   "acme_trt.ok": """
        import plugtrt, torch
        @plugtrt.hookimpl
        def plugtrt_converters():
            yield plugtrt.ConverterSpec(name="acme.erf", target=torch.ops.aten.erf.default,
                                        convert=lambda *a: None)
        """})
    with pytest.warns(UserWarning, match=r"'acme_trt\.broken' from acme-trt 0\.1 failed to load.*no libacme"):
        loaded = load_entry_points(pm, strict=False)
    assert "acme_trt.ok" in loaded and "acme_trt.broken" not in loaded
    assert "acme.erf" in {r.record.name for r in collect(pm, "plugtrt_converters")}


def test_strict_plugins_raise(pm, fake_distribution):
    fake_distribution("acme-trt", {"acme_trt.broken": "raise ImportError('no libacme')"})
    with pytest.raises(PluginLoadError, match=r"PLUGTRT_BLOCK_PLUGINS=acme_trt\.broken"):
        load_entry_points(pm, strict=True)


def test_environment_switches(pm, fake_distribution, monkeypatch):
    fake_distribution("acme-trt", {"acme_trt.broken": "raise ImportError('no libacme')"})
    monkeypatch.setenv("PLUGTRT_DISABLE_PLUGIN_AUTOLOAD", "1")
    loaded = load_entry_points(pm, strict=True)
    assert "acme_trt.broken" not in loaded and "plugtrt.partitioners.fast" in loaded
    monkeypatch.delenv("PLUGTRT_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("PLUGTRT_BLOCK_PLUGINS", "acme_trt.broken,plugtrt.partitioners.global")
    loaded = load_entry_points(plugtrt.manager.new_plugin_manager(), strict=True)
    assert "acme_trt.broken" not in loaded and "plugtrt.partitioners.global" not in loaded


def _plugin_modules() -> set[str]:
    """Every module of the built-in plugin folders that implements a plugtrt hook."""
    found = set()
    for package in ("converters", "lowering", "partitioners", "runtimes", "stores"):
        pkg = importlib.import_module(f"plugtrt.{package}")
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"plugtrt.{package}."):
            module = importlib.import_module(info.name)
            if any(name.startswith("plugtrt_") and hasattr(getattr(module, name), "plugtrt_impl")
                   for name in vars(module)):
                found.add(info.name)
    return found


def test_every_builtin_plugin_module_is_an_entry_point():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["plugtrt"]
    assert set(declared.values()) == _plugin_modules()


def test_registry_from_builds_a_hermetic_registry():
    from plugtrt.partitioners import fast
    registry = registry_from(fast)
    assert list(registry.partitioners) == ["fast"] and not registry.converters


class _Broken:
    """Third-party plugins that each break one contract."""

    class RaisingHook:
        @hookimpl
        def plugtrt_converters(self):
            raise RuntimeError("no license file")

    class WrongRecord:
        @hookimpl
        def plugtrt_converters(self):
            yield {"name": "broken.relu"}

    class Duplicate:
        @hookimpl
        def plugtrt_converters(self):
            yield ConverterSpec(name="builtin.relu", target=aten.sigmoid.default, convert=_relu)

    class SameTarget:
        @hookimpl
        def plugtrt_converters(self):
            yield ConverterSpec(name="acme.relu", target=aten.relu.default, convert=_relu)


@pytest.mark.parametrize("broken, why", [
    (_Broken.RaisingHook, "raised RuntimeError"), (_Broken.WrongRecord, "yields ConverterSpec"),
    (_Broken.Duplicate, "name 'builtin.relu'"), (_Broken.SameTarget, "same target at the same priority"),
])
def test_broken_third_party_plugin_is_skipped_naming_it_and_the_rest_works(pm, broken, why):
    from plugtrt.converters import activation

    pm.register(activation, name="plugtrt.converters.activation")
    pm.register(broken(), name="acme")
    with pytest.warns(UserWarning, match=rf"(?s)skipping plugin\(s\) acme: .*{why}"):
        registry = PluginRegistry(pm, strict=False)
    assert [r.record.name for r in registry.converters[aten.relu.default]] == ["builtin.relu"]
    assert not pm.has_plugin("acme")


def test_broken_plugin_raises_when_strict(pm):
    pm.register(_Broken.WrongRecord(), name="acme")
    with pytest.raises(PluginLoadError, match=r"plugin 'acme' yielded"):
        PluginRegistry(pm, strict=True)


def test_misspelt_hook_of_an_entry_point_warns_and_the_rest_loads(pm, fake_distribution):
    fake_distribution("acme-trt", {"acme_trt.typo": """
        import plugtrt
        @plugtrt.hookimpl
        def plugtrt_convertors():
            yield from ()
        """})
    with pytest.warns(UserWarning, match=r"'acme_trt\.typo' from acme-trt 0\.1 failed to load.*plugtrt_convertors"):
        loaded = load_entry_points(pm, strict=False)
    assert "acme_trt.typo" not in loaded and "plugtrt.converters.activation" in loaded


def test_ops_command_lists_targets_converters_and_dynamic_support():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "plugtrt", "ops", "--json"], capture_output=True,
                         text=True, check=True).stdout
    rows = {(r["target"], r["converter"]): r for r in json.loads(out)}
    relu = rows[("aten.relu.default", "builtin.relu")]
    assert relu["plugin"] == "plugtrt.converters.activation" and relu["dynamic_shapes"] is True
    assert len({target for target, _ in rows}) >= 100
    only = subprocess.run([sys.executable, "-m", "plugtrt", "ops", "--plugin", "plugtrt_example.erf"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert only[0].split() == ["TARGET", "CONVERTER", "PLUGIN", "SHAPES", "NOTES"]
    assert only[1].split()[:2] == ["aten.erf.default", "example.erf"] and only[-1] == "1 targets, 1 converters"


def test_ops_plugin_takes_a_distribution_name_and_refuses_an_unknown_one(capsys):
    from plugtrt.__main__ import main

    assert main(["ops", "--plugin", "plugtrt-example"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert {line.split()[2] for line in listed[1:-1]} >= {"plugtrt_example.erf", "plugtrt_example.gelu"}
    assert main(["ops", "--plugin", "plugtrt_exampel"]) == 2
    err = capsys.readouterr().err
    assert "no plugin or distribution named 'plugtrt_exampel'" in err and "plugtrt-example" in err


def test_ops_update_without_markdown_is_an_error(capsys):
    import pytest

    from plugtrt.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["ops", "--update", "README.md"])
    assert exited.value.code == 2 and "add --markdown" in capsys.readouterr().err


def test_ops_json_prints_rows_or_writes_them_to_a_file(tmp_path, capsys):
    import json

    from plugtrt.__main__ import main

    assert main(["ops", "--json", "--plugin", "plugtrt_example.erf"]) == 0
    assert [r["converter"] for r in json.loads(capsys.readouterr().out)] == ["example.erf"]
    target = tmp_path / "ops.json"
    assert main(["ops", "--json", str(target), "--plugin", "plugtrt_example.erf"]) == 0
    assert "example.erf" in capsys.readouterr().out  # the table, as conformance prints its own
    assert [r["converter"] for r in json.loads(target.read_text())] == ["example.erf"]


def test_plugins_command_lists_skipped_plugins_with_why(fake_distribution, monkeypatch, capsys):
    from plugtrt import manager
    from plugtrt.__main__ import main

    fake_distribution("acme-broken", {"acme_broken.converters": "raise ImportError('no acme here')\n"})
    monkeypatch.setenv("PLUGTRT_STRICT_PLUGINS", "0")
    monkeypatch.setattr(manager, "_default", None)
    with pytest.warns(UserWarning, match="acme_broken.converters"):
        assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "skipped (1):" in out and "acme_broken.converters: plugin 'acme_broken.converters' from acme-broken" in out
    assert "no acme here" in out


def test_help_loads_no_plugin_and_nothing_of_torch_but_its_core():
    """``python -m plugtrt --help`` answers without loading the plugins or dynamo (it took seconds
    when every plugin loaded first); ``import plugtrt`` imports torch itself only to register the
    op that saved programs call. A plugin's command still loads the plugins and runs."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "plugtrt", "--help"],
                          capture_output=True, text=True, check=True)
    assert "ops" in done.stdout and "conformance" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "torch._dynamo" not in imported and "plugtrt.manager" not in imported
