"""The compiled build is used only when it matches its sources (proxy/native.py).

Each test copies the `router` and `proxy` packages into a temporary folder and imports them in
a fresh interpreter there, so that editing a source or faking a compiled file touches nothing
the rest of the suite runs.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import config, proxy_process
from proxy import native

ROOT = Path(__file__).resolve().parents[2]

# What the child reports: the build state it chose, where each module came from, and whether
# an edit made to router/pick.py (see test_an_edited_source_runs_not_its_stale_build) is live.
_CHILD = """
import json, sys
from proxy import native
native.activate()
import proxy.exchange, router.pick
print(json.dumps({
    "state": native.state,
    "exchange": proxy.exchange.__file__,
    "pick": router.pick.__file__,
    "edited": getattr(router.pick, "EDITED", False),
}))
"""


def _copy_tree(into: Path) -> Path:
    for package in ("router", "proxy"):
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return into


def _import_in(root: Path, mode: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "TURNOUT_NATIVE"}
    env["PYTHONPATH"] = str(root)
    if mode is not None:
        env["TURNOUT_NATIVE"] = mode
    return subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
        check=False,
    )


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def _fake_build(root: Path) -> None:
    """Files where compiled modules would be, that cannot be imported: any use of them fails."""
    for module in native.MODULES:
        (root / native.compiled_path(module).relative_to(ROOT)).write_bytes(b"not a library")


needs_build = pytest.mark.skipif(
    native.inspect() != "compiled",
    reason="needs the compiled build: a C compiler and mypyc (scripts/compile)",
)


def test_without_a_build_the_sources_run(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    for module in native.MODULES:  # when this checkout is compiled, drop the build
        (root / native.compiled_path(module).relative_to(ROOT)).unlink(missing_ok=True)
    report = _report(_import_in(root))
    assert report["state"] == "source"
    assert report["exchange"] == str(root / "proxy" / "exchange.py")


def test_a_build_without_its_record_is_stale_and_never_loaded(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / native.MANIFEST.relative_to(ROOT)).unlink(missing_ok=True)
    _fake_build(root)
    # Importing one of the fake files would raise ImportError: the sources must run instead.
    report = _report(_import_in(root))
    assert report["state"] == "stale"
    assert report["exchange"] == str(root / "proxy" / "exchange.py")
    assert report["pick"] == str(root / "router" / "pick.py")


def test_require_refuses_to_start_on_a_stale_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / native.MANIFEST.relative_to(ROOT)).unlink(missing_ok=True)
    _fake_build(root)
    result = _import_in(root, "require")
    assert result.returncode != 0
    assert "TURNOUT_NATIVE=require but the compiled build is stale" in result.stderr
    assert "scripts/compile" in result.stderr


def test_require_refuses_to_start_without_a_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    for module in native.MODULES:
        (root / native.compiled_path(module).relative_to(ROOT)).unlink(missing_ok=True)
    result = _import_in(root, "require")
    assert result.returncode != 0
    assert "the compiled build is source" in result.stderr


def test_off_runs_the_sources_even_beside_a_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    _fake_build(root)
    report = _report(_import_in(root, "off"))
    assert report["state"] == "off"
    assert report["exchange"] == str(root / "proxy" / "exchange.py")


@needs_build
def test_a_fresh_build_is_what_runs(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    report = _report(_import_in(root, "require"))
    assert report["state"] == "compiled"
    assert report["exchange"] == str(
        root / native.compiled_path("proxy.exchange").relative_to(ROOT)
    )


@needs_build
def test_an_edited_source_runs_not_its_stale_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    pick = root / "router" / "pick.py"
    pick.write_text(pick.read_text() + "\nEDITED = True\n")
    report = _report(_import_in(root))
    assert report["state"] == "stale"
    assert report["edited"] is True
    # All or none: the unedited exchange.py runs from source too.
    assert report["exchange"] == str(root / "proxy" / "exchange.py")


@needs_build
def test_the_manifest_records_every_compiled_source() -> None:
    recorded = json.loads(native.MANIFEST.read_text())
    assert recorded["cache_tag"] == sys.implementation.cache_tag
    assert set(recorded["modules"]) == set(native.MODULES)


@needs_build
def test_a_module_compiled_by_an_earlier_list_is_never_loaded(tmp_path: Path) -> None:
    """A build from when router.spec was compiled leaves router/spec.*.so behind: importing it
    fails (its part of the shared library is gone), so the sources run until a rebuild."""
    root = _copy_tree(tmp_path)
    stray = root / native.compiled_path("router.spec").relative_to(ROOT)
    stray.write_bytes(b"not a library")
    report = _report(_import_in(root))
    assert report["state"] == "stale"
    assert report["exchange"] == str(root / "proxy" / "exchange.py")
    refused = _import_in(root, "require")
    assert refused.returncode != 0
    assert "stale" in refused.stderr


def test_activating_after_a_compiled_module_was_imported_is_refused() -> None:
    """Too late to choose: a stale extension already loaded would keep running."""
    result = subprocess.run(
        [sys.executable, "-c", "import router; from proxy import native; native.activate()"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "activate() came too late: router.cookies, router.decide" in result.stderr


def _maps_the_build(pid: int) -> bool:
    shared = f"native__mypyc{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    return shared in Path(f"/proc/{pid}/maps").read_text()


@needs_build
@pytest.mark.parametrize(("mode", "compiled"), [("auto", True), ("off", False)])
def test_turnout_run_and_its_workers_run_the_build_chosen(mode: str, compiled: bool) -> None:
    """Each process chooses for itself (the control plane in the command line and the
    composition root, each worker at its start): all of them run what the files and
    TURNOUT_NATIVE say, and the log says which."""
    data = config({"app": ["http://127.0.0.1:9"]}, {"web": {"weights": {"app": 1}}})
    with proxy_process(data, workers=2, environment={"TURNOUT_NATIVE": mode}) as proxy:
        status, body = proxy.admin("GET", "/v1/workers")
        assert status == 200, body
        pids = [proxy.process.pid, *(worker["pid"] for worker in body["workers"])]
        assert [_maps_the_build(pid) for pid in pids] == [compiled] * 3
        expected = "compiled with mypyc" if compiled else "pure Python (TURNOUT_NATIVE=off)"
        assert f"data plane {expected}" in proxy.log()
