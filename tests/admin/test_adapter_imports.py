"""The admin API is an adapter over the control service: it parses HTTP, calls
`proxy.control`'s service and renders. It never reaches into the control plane's parts (the
supervisor's worker slots, the health checker, the telemetry sums) nor validates with the
configuration's models: a rule there would be one a rollout controller inside proxy/ could not
reach. Checked statically, over every module of the package, so a lazy import inside a function
counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = ("proxy.supervisor", "proxy.health", "proxy.telemetry", "proxy.config")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in `path` names (with `from x import y`, both x and
    x.y: y may be a submodule)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_admin_api_imports_none_of_the_control_planes_parts() -> None:
    modules = sorted((ROOT / "admin_api").rglob("*.py"))
    assert len(modules) > 10  # the package was found
    reaches = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in modules
        for line, module in _imports(path)
        if _forbidden(module)
    ]
    assert reaches == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from proxy import health\n    import proxy.config as c\n")
    assert [m for _, m in _imports(module) if _forbidden(m)] == ["proxy.health", "proxy.config"]


PARTS = ("supervisor", "telemetry", "slots", "state_file")
"""The control plane's attributes: an adapter that reads one reaches past the service."""


def test_only_the_app_factory_sees_the_control_plane_and_nothing_reads_its_parts() -> None:
    """The factory receives the plane (the composition root hands it over) and makes the
    service from it; no handler, view or collector reads the plane's attributes."""
    found = []
    for path in sorted((ROOT / "admin_api").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "ControlPlane" and where.name != "app.py":
                found.append(f"{where}:{node.lineno}: ControlPlane")
            if isinstance(node, ast.Attribute) and node.attr in PARTS:
                found.append(f"{where}:{node.lineno}: .{node.attr}")
    assert found == []
