"""The layer rule of docs/architecture.md: the library never imports streamlit (nor the app
layer); the app layer is the only place that does."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_MODULES = {"streamlit", "ui", "app_pages"}


def _imports(path: Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_library_never_imports_the_app_layer():
    files = sorted((ROOT / "skimviz").rglob("*.py"))
    assert len(files) > 30
    bad = {str(f.relative_to(ROOT)): sorted(_imports(f) & APP_MODULES) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_rule_catches_an_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    import streamlit as st\n    from ui.lede import lede\n")
    assert _imports(f) & APP_MODULES == {"streamlit", "ui"}
