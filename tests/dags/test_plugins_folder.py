"""The plugins folder loads cleanly: nothing shadows an installed package or is imported twice.

Airflow's plugin loader imports every ``.py`` file it walks under the plugins
folder as a top-level module named after the file. A module of the
``sublessor_airflow`` package walked that way would replace a library of the same
name (``hooks/amqp.py`` → ``amqp``, which Celery's transport needs) and run a
second time under a second name. ``plugins/.airflowignore`` keeps the loader to
the files that define plugins.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
INCLUDE_DIR = Path(__file__).resolve().parents[2] / "include"


def _walked_modules(syntax: str) -> dict[str, Path]:
    """``{module name: file}`` of every file Airflow's plugin loader would import."""
    from airflow._shared.module_loading import find_path_from_directory

    walked = {}
    for name in find_path_from_directory(str(PLUGINS_DIR), ".airflowignore", syntax):
        path = Path(name)
        if path.is_file() and path.suffix == ".py":
            walked[path.stem] = path
    return walked


def _installed_top_level_names() -> set[str]:
    names = set(sys.stdlib_module_names) | set(importlib.metadata.packages_distributions())
    # Our own packages are imported by their names from plugins/ and include/.
    for folder in (PLUGINS_DIR, INCLUDE_DIR):
        names |= {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return names


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_loader_walks_no_module_of_a_package(syntax: str) -> None:
    """A file inside a package is imported by its package name; walked, it would run twice."""
    inside_packages = {
        name: path
        for name, path in _walked_modules(syntax).items()
        if (path.parent / "__init__.py").is_file()
    }
    assert inside_packages == {}, (
        f"the plugin loader ({syntax} ignore syntax) would import these package modules a second "
        f"time as top-level modules: {inside_packages}; list their folder in plugins/.airflowignore"
    )


@pytest.mark.parametrize("syntax", ["glob", "regexp"])
def test_no_walked_module_shadows_an_installed_package(syntax: str) -> None:
    taken = _installed_top_level_names()
    clashes = {n: p for n, p in _walked_modules(syntax).items() if n in taken}
    assert clashes == {}, (
        f"these plugin-folder files would replace an installed module of the same name: {clashes}; "
        "rename them or list them in plugins/.airflowignore"
    )


def test_the_check_sees_the_package_modules_without_the_ignore_file(tmp_path) -> None:
    """Guard for the two tests above: without .airflowignore the package's files are walked."""
    from airflow._shared.module_loading import find_path_from_directory

    walked = {
        Path(p).stem
        for p in find_path_from_directory(str(PLUGINS_DIR), ".no-such-ignore-file", "glob")
        if p.endswith(".py")
    }
    assert {"amqp", "charge", "call400_work"} <= walked


def test_airflow_loads_the_plugins_folder_without_shadowing_modules(monkeypatch) -> None:
    """Run Airflow's own loader on the folder: no import error, no top-level module replaced."""
    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    before = dict(sys.modules)
    try:
        _, errors = _load_plugins_from_plugin_directory(str(PLUGINS_DIR), ignore_file_syntax="glob")
        added_from_plugins = {
            name
            for name, mod in sys.modules.items()
            if name not in before
            and "." not in name
            and str(getattr(mod, "__file__", "") or "").startswith(str(PLUGINS_DIR))
            and not (PLUGINS_DIR / name / "__init__.py").is_file()
        }
    finally:
        for name in set(sys.modules) - set(before):
            if "." not in name and str(getattr(sys.modules[name], "__file__", "") or "").startswith(
                str(PLUGINS_DIR)
            ):
                del sys.modules[name]
    assert errors == {}
    plugin_files = {p.stem for p in PLUGINS_DIR.glob("*.py")}
    assert added_from_plugins <= plugin_files, added_from_plugins - plugin_files
