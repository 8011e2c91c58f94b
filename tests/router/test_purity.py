"""The router is pure: importing it pulls in no I/O or runtime dependency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = ("aiohttp", "asyncio", "prometheus_client", "uvloop", "proxy", "admin_api")

_CHILD = """
import json, sys
before = sorted(sys.modules)
import router
import router.build, router.cookies, router.decide, router.decision, router.edits
import router.hashing, router.pick, router.snapshot, router.spec, router.split
print(json.dumps({"before": before, "after": sorted(sys.modules), "file": router.__file__}))
"""


def _loaded(names: list[str], root: str) -> list[str]:
    return [name for name in names if name == root or name.startswith(root + ".")]


def test_import_router_loads_no_io_modules() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=True,
    )
    modules = json.loads(result.stdout)
    assert Path(modules["file"]).resolve() == ROOT / "router" / "__init__.py"
    for name in FORBIDDEN:
        # Not loaded by interpreter start-up either, or the check below would prove nothing.
        assert not _loaded(modules["before"], name), f"{name} loaded before router was imported"
        assert not _loaded(modules["after"], name), f"import router loaded {name}"


# Every file `import router` opens must be one of the modules it imported: the importer's own
# reads. Which build runs is decided outside the router (proxy/native.py), by whoever starts.
_QUIET_CHILD = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
finders, hooks = list(sys.meta_path), list(sys.path_hooks)
import router
seen = list(opened)
own = {getattr(module, attribute, None)
       for module in list(sys.modules.values()) for attribute in ("__file__", "__cached__")}
print(json.dumps({
    "finders": [repr(finder) for finder in sys.meta_path if finder not in finders],
    "hooks": [repr(hook) for hook in sys.path_hooks if hook not in hooks],
    "opened": [path for path in seen if path not in own],
}))
"""


@pytest.mark.parametrize("mode", ["auto", "off", "require"])
def test_import_router_installs_no_hook_and_opens_no_file(mode: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TURNOUT_NATIVE": mode,
        "PYTHONDONTWRITEBYTECODE": "1",  # a .pyc written is a file opened, by the importer
    }
    result = subprocess.run(
        [sys.executable, "-c", _QUIET_CHILD],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"finders": [], "hooks": [], "opened": []}
