"""The external programs the benchmark can use (wrk, nginx, haproxy) and their versions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Debian installs nginx and haproxy in /usr/sbin, which is not on an ordinary user's PATH.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

_VERSION_ARGS = {"wrk": ["--version"], "nginx": ["-v"], "haproxy": ["-v"]}
_VERSION_PATTERNS = {
    "wrk": r"wrk (\S+)",
    "nginx": r"nginx/(\S+)",
    "haproxy": r"HAProxy version (\S+)",
}


def find(program: str) -> str | None:
    """The path of `program`, or None when it is not installed."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + os.pathsep.join(_EXTRA_DIRS)
    return shutil.which(program, path=path)


def version(program: str, path: str) -> str:
    """The version `program` reports of itself, or "unknown"."""
    try:
        # wrk prints its version with the usage text and exits non-zero; nginx prints to stderr.
        result = subprocess.run(
            [path, *_VERSION_ARGS[program]],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(_VERSION_PATTERNS[program], result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def turnout_command() -> list[str]:
    """How to run `turnout`: the installed script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("turnout")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "proxy.cli"]
