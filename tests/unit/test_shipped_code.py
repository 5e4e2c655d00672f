"""The production image leaves the development tools out, and nothing it ships needs them.

``include/sublessor_billing/sandbox/`` (fakes of the external services) and
``demo/`` are for tests, benchmarks and demonstrations. ``.dockerignore`` keeps
them out of the image; the DAGs, plugins and the rest of ``include/`` must then
never import them, at import time or inside a function.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEV_TOOLS = {
    "sublessor_billing.sandbox": "include/sublessor_billing/sandbox",
    "sublessor_billing.demo": "include/sublessor_billing/demo",
}


def shipped_files() -> list[Path]:
    """Every Python file the image copies: dags/, plugins/, include/ minus the tools."""
    skipped = tuple(REPO / folder for folder in DEV_TOOLS.values())
    return [
        path
        for top in ("dags", "plugins", "include")
        for path in sorted((REPO / top).rglob("*.py"))
        if not path.is_relative_to(skipped[0]) and not path.is_relative_to(skipped[1])
    ]


def _names_a_tool(name: str) -> bool:
    return any(name == tool or name.startswith(tool + ".") for tool in DEV_TOOLS)


def tool_references(path: Path) -> list[str]:
    """``line: name`` of every import of a tool in ``path`` (also dotted strings, e.g. lazy imports)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value.split(":")[0]]
        found += [f"{node.lineno}: {name}" for name in names if _names_a_tool(name)]
    return found


def test_the_image_leaves_the_development_tools_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert set(DEV_TOOLS.values()) <= ignored
    dockerfile = (REPO / "Dockerfile").read_text()
    # the tools are left out of the build context, so only COPY of the context can ship code
    assert "COPY --chown=airflow:root include/ /opt/airflow/include/" in dockerfile


def test_no_shipped_file_imports_a_development_tool() -> None:
    files = shipped_files()
    assert len(files) > 50  # the walk found the code
    offending = {
        str(path.relative_to(REPO)): refs for path in files if (refs := tool_references(path))
    }
    assert offending == {}


def test_the_scan_sees_every_form_of_import(tmp_path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            import sublessor_billing.sandbox.server
            from sublessor_billing import demo
            from sublessor_billing.demo.run import main
            LAZY = "sublessor_billing.sandbox.k3_cloud:K3CloudSandbox"
            from sublessor_billing import config
            """
        )
    )
    assert [ref.split(": ")[1] for ref in tool_references(sample)] == [
        "sublessor_billing.sandbox.server",
        "sublessor_billing.demo",
        "sublessor_billing.demo.run",
        "sublessor_billing.demo.run.main",
        "sublessor_billing.sandbox.k3_cloud",
    ]


_IMPORT_WITHOUT_TOOLS = """
import importlib, importlib.abc, sys

TOOLS = {tools!r}

class LeftOut(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == t or name.startswith(t + ".") for t in TOOLS):
            raise ModuleNotFoundError(f"{{name}} is not in the production image", name=name)
        return None

sys.meta_path.insert(0, LeftOut())
for module in {modules!r}:
    importlib.import_module(module)

import importlib.util
for number, path in enumerate({plugin_files!r}):  # as Airflow's plugin loader does
    spec = importlib.util.spec_from_file_location(f"_plugin_{{number}}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={dags!r})
assert not bag.import_errors, bag.import_errors
assert bag.dag_ids, "no DAG parsed"
print("imported", len({modules!r}), "modules and", len(bag.dag_ids), "DAGs")
"""


def test_shipped_modules_and_dags_import_without_the_tools() -> None:
    modules = []
    for path in shipped_files():
        roots = [p for p in (REPO / "include", REPO / "plugins") if path.is_relative_to(p)]
        if not roots or path.parent == REPO / "plugins":
            continue  # DAG files (the DagBag) and plugin registration files (by path)
        parts = path.relative_to(roots[0]).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    script = _IMPORT_WITHOUT_TOOLS.format(
        tools=sorted(DEV_TOOLS),
        modules=sorted(set(modules)),
        plugin_files=[str(path) for path in sorted((REPO / "plugins").glob("*.py"))],
        dags=str(REPO / "dags"),
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'include'}{os.pathsep}{REPO / 'plugins'}"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
