"""The router is pure: importing it pulls in no I/O or runtime dependency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
