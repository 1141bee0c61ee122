"""``python -m plugtrt ops --markdown --update FILE`` fills a page's coverage section (docs/operators.md
is checked by tests/test_docs.py)."""
from __future__ import annotations

from plugtrt.__main__ import OPS_BEGIN, OPS_END, main, ops_markdown, readme_ops_section


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
