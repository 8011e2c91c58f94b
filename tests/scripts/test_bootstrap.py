"""scripts/bootstrap installs once: alternating the demo's and the tests' set-up reuses it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Stands in for the venv's interpreter at the one seam bootstrap crosses: it records every pip
# call instead of installing (the real install is what scripts/test itself just ran).
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls"
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def bootstrap(root: Path, *extras: str) -> list[str]:
    """Run bootstrap; the pip installs it made."""
    calls = root / ".venv" / "calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "TURNOUT_NATIVE": "off"}
    result = subprocess.run(
        ["bash", "scripts/bootstrap", *extras],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if "install" in line and "-e" in line]


def test_the_demo_after_the_tests_does_not_reinstall(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert bootstrap(root, "dev") == ["-m pip install --quiet -e .[dev,native]"]
    assert bootstrap(root) == []
    assert bootstrap(root, "dev") == []
    assert bootstrap(root) == []


def test_the_tests_after_the_demo_add_their_tools_once(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert bootstrap(root) == ["-m pip install --quiet -e .[native]"]
    assert bootstrap(root, "dev") == ["-m pip install --quiet -e .[dev,native]"]
    assert bootstrap(root) == []


def test_a_changed_pyproject_installs_again_keeping_the_extras(tmp_path: Path) -> None:
    root = project(tmp_path)
    bootstrap(root, "dev")
    with (root / "pyproject.toml").open("a") as file:
        file.write("\n# a new dependency\n")
    assert bootstrap(root) == ["-m pip install --quiet -e .[dev,native]"]
    assert bootstrap(root, "dev") == []


def test_a_stamp_of_the_old_format_installs_again(tmp_path: Path) -> None:
    root = project(tmp_path)
    digest = subprocess.run(
        "sha256sum < pyproject.toml | cut -c1-16",
        shell=True,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (root / ".venv" / ".turnout-installed").write_text(f"{digest} .[native,dev]\n")
    assert bootstrap(root) == ["-m pip install --quiet -e .[native]"]
