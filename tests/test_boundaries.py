"""Architecture rules that keep the engine portable."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


def test_engine_never_imports_airflow_or_sqlalchemy():
    sources = sorted((ROOT / "engage_core").glob("*.py"))
    assert sources, "engage_core has no Python modules"
    offenders = {p.name: m for p in sources for m in _imports(p) if m in {"airflow", "sqlalchemy"}}
    assert offenders == {}
    for pyx in (ROOT / "engage_core").glob("*.pyx"):
        text = pyx.read_text()
        assert "import airflow" not in text and "import sqlalchemy" not in text, pyx.name


def test_kernels_do_not_link_libarrow():
    # The compiled kernels read Arrow buffers through the buffer protocol only.
    for pyx in (ROOT / "engage_core").glob("*.pyx"):
        text = pyx.read_text()
        assert "pyarrow.lib" not in text and "cimport pyarrow" not in text, pyx.name


def test_modules_stay_small():
    for path in list((ROOT / "engage_core").glob("*.py*")) + list((ROOT / "engage_plugin").rglob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.relative_to(ROOT)} has {lines} lines"


def _top_level_imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


def test_the_engage_command_side_does_not_need_airflow():
    plain = ["config.py", "yaml_tree.py", "sources.py", "targets.py", "runner.py", "compute.py",
             "cli.py", "demo.py", "demo_summary.py", "demo_catalogue.py"]
    plain += [f"superset/{p.name}" for p in (ROOT / "engage_plugin" / "superset").glob("*.py")]
    for name in plain:
        path = ROOT / "engage_plugin" / name
        assert path.exists(), name
        assert "airflow" not in set(_top_level_imports(path)), name
