"""The README's coverage section is ``python -m plugtrt ops --markdown``'s output, kept current."""
from __future__ import annotations

from pathlib import Path

from plugtrt.__main__ import OPS_BEGIN, OPS_END, OPS_UPDATE, main, ops_markdown, readme_ops_section

README = Path(__file__).parents[2] / "README.md"


def test_readme_coverage_section_is_the_generated_one():
    section = readme_ops_section(README.read_text())
    assert section is not None, f"README.md lost its {OPS_BEGIN!r} ... {OPS_END!r} markers"
    assert section == ops_markdown(), f"README.md's coverage section is out of date: run `{OPS_UPDATE}`"


def test_ops_markdown_update_fills_only_between_the_markers(tmp_path, capsys):
    target = tmp_path / "README.md"
    target.write_text(f"# title\n{OPS_BEGIN}\nstale\n{OPS_END}\ntail\n")
    assert main(["ops", "--markdown", "--update", str(target)]) == 0
    text = target.read_text()
    assert text.startswith(f"# title\n{OPS_BEGIN}\n") and text.endswith(f"{OPS_END}\ntail\n")
    assert readme_ops_section(text) == ops_markdown() and "stale" not in text
    assert "| `aten.relu.default` | yes |" in ops_markdown()
    (tmp_path / "plain.md").write_text("no markers\n")
    assert main(["ops", "--markdown", "--update", str(tmp_path / "plain.md")]) == 2
    assert "no lines" in capsys.readouterr().err
