"""The hot-path modules turnout compiles to C with mypyc, and whether that build may be used.

Why compile: per request, most of turnout's own CPU time is interpreter overhead in a few
modules (parsing callbacks, the exchange's phases, routing, metrics). mypyc turns those typed
modules into C extensions with the same behaviour, and the benchmark shows the difference
(`turnout bench --targets turnout,turnout-py`).

Where the build lives: each compiled module sits beside its source
(`proxy/exchange.cpython-311-x86_64-linux-gnu.so` next to `proxy/exchange.py`), where Python's
importer prefers it. A module compiled from an older source would silently run old code, so a
build records the digest of every source it compiled, and `activate()` falls back to the sources
when any of them changed since. All or none: compiled modules call one another directly, so
mixing one stale module with fresh ones would still run the stale code.

Who activates: whatever starts a process that runs the data plane, before it imports any
compiled module: the composition root (proxy/instance.py), a worker (proxy/worker.py), the
command line (proxy/cli.py), the benchmark (benchmarks/__main__.py) and the test suite
(tests/conftest.py). This module lives beside the router, not in it: `import router` reads no
file and installs no hook, so a program that imports the router without activating gets what
Python's importer finds (the extension when one is there).

`TURNOUT_NATIVE` chooses: `auto` (default: compiled when fresh, else the sources), `off` (always
the sources: debugging, or measuring what compiling buys), `require` (fail unless the fresh
compiled build is in use: the test suite, so it checks what ships).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Literal

# The data plane's per-request path, and the router it calls. Not here, and why:
# router.spec and proxy.channel's messages are pickled between processes (compiled frozen
# dataclasses refuse pickle's default restore); everything else runs per change or per scrape.
MODULES = (
    "proxy.admission",
    "proxy.dataplane",
    "proxy.downstream",
    "proxy.exchange",
    "proxy.exchange_failures",
    "proxy.headers",
    "proxy.keepalive",
    "proxy.lifecycle",
    "proxy.metrics",
    "proxy.observation",
    "proxy.selection",
    "proxy.tunnel",
    "proxy.upstream",
    "router.cookies",
    "router.decide",
    "router.decision",
    "router.failover",
    "router.hashing",
    "router.paths",
    "router.pick",
    "router.snapshot",
    "router.split",
)

ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the `router` and `proxy` packages (the checkout, or site-packages)."""

PACKAGES = ("router", "proxy")
"""The packages compiled modules live in."""

MANIFEST = ROOT / "proxy" / "native-build.json"
"""What the last build compiled: the interpreter and each source's digest."""

State = Literal["compiled", "stale", "source", "off"]
"""compiled: the fresh build is in use; stale: a build exists but sources changed since, so the
sources run; source: no build; off: TURNOUT_NATIVE=off, so the sources run."""

state: State = "source"

_activated = False


class NativeBuildError(ImportError):
    """TURNOUT_NATIVE=require, and the fresh compiled build cannot be used."""


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def compiled_path(module: str) -> Path:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return ROOT.joinpath(*module.split(".")).with_name(module.rpartition(".")[2] + suffix)


def digests() -> dict[str, str]:
    return {
        module: hashlib.sha256(source_path(module).read_bytes()).hexdigest() for module in MODULES
    }


def strays() -> set[Path]:
    """Extension modules in turnout's packages that the current MODULES did not produce: left
    by a build from an earlier list, one would still be imported (extensions win over
    sources) and fail to find its part of the new shared library."""
    expected = {compiled_path(module) for module in MODULES}
    return {
        path
        for package in PACKAGES
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        for path in (ROOT / package).glob(f"*{suffix}")
        if path not in expected and not path.name.startswith("native__mypyc")
    }


def inspect() -> State:
    """What a fresh interpreter would run, judged from the files alone."""
    if not any(compiled_path(module).exists() for module in MODULES):
        return "stale" if strays() else "source"
    try:
        recorded = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return "stale"
    fresh = (
        isinstance(recorded, dict)
        and recorded.get("cache_tag") == sys.implementation.cache_tag
        and recorded.get("modules") == digests()
        and all(compiled_path(module).exists() for module in MODULES)
        and not strays()
    )
    return "compiled" if fresh else "stale"


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' sources, ahead of the importer that prefers extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        # Every module of the packages, not only MODULES: a stray extension must not load either.
        if fullname.partition(".")[0] not in PACKAGES or not source_path(fullname).exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def activate() -> State:
    """Decide, once per process, whether the compiled build or the sources run. Later calls
    return the decision; the first must come before any compiled module is imported."""
    global state, _activated
    if _activated:
        return state
    # Too late to choose: a module already imported stays whichever build the importer found.
    early = sorted(module for module in MODULES if module in sys.modules)
    if early:
        raise RuntimeError(
            f"proxy.native.activate() came too late: {', '.join(early)} already imported "
            "(activate before importing the router or the data plane)"
        )
    mode = os.environ.get("TURNOUT_NATIVE", "auto")
    state = "off" if mode == "off" else inspect()
    if mode == "require" and state != "compiled":
        raise NativeBuildError(
            f"TURNOUT_NATIVE=require but the compiled build is {state}: "
            "build it with `scripts/compile` (scripts/bootstrap runs it)"
        )
    if state != "compiled":
        sys.meta_path.insert(0, _SourcesFirst())
    _activated = True
    return state


def describe() -> str:
    """One line for the startup log."""
    return {
        "compiled": "compiled with mypyc",
        "stale": "pure Python (the compiled build is older than its sources: "
        "run `scripts/compile`)",
        "source": "pure Python (not compiled: `scripts/compile` compiles it)",
        "off": "pure Python (TURNOUT_NATIVE=off)",
    }[state]


# mypyc's own command names the shared library after a hash and puts it at the top level, which
# an editable install cannot import; naming the group puts it inside a package instead
# (router/native__mypyc.*.so). The router's, not this one: every compiled module imports it, and
# the router never imports the proxy. pyproject's mypy settings apply, except that the note
# about its sections for modules not compiled here is not an error.
_SETUP = """
import sys
from mypyc.build import mypycify
from setuptools import setup

modules = mypycify(["--no-warn-unused-configs", *sys.argv[1:]], group_name="router.native")
setup(ext_modules=modules, script_args=["--quiet", "build_ext", "--inplace"])
"""


def build() -> None:
    """Compile MODULES in place with mypyc and record what was compiled."""
    import subprocess

    recorded = digests()  # before compiling: an edit made meanwhile leaves the build stale
    # Unlink, never overwrite: a running turnout (or this process) has the old files mapped,
    # and truncating a mapped shared library crashes whoever runs it.
    clean()
    sources = [str(source_path(module).relative_to(ROOT)) for module in MODULES]
    subprocess.run([sys.executable, "-c", _SETUP, *sources], cwd=ROOT, check=True)
    manifest = {"cache_tag": sys.implementation.cache_tag, "modules": recorded}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


def clean() -> None:
    """Remove the compiled build: the sources run from now on."""
    MANIFEST.unlink(missing_ok=True)
    for module in MODULES:
        compiled_path(module).unlink(missing_ok=True)
    for stray in strays():
        stray.unlink()
    for shared in ROOT.glob("router/native__mypyc.*"):
        shared.unlink()
    # Where the record lived while this module was router/native.py.
    (ROOT / "router" / MANIFEST.name).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """scripts/compile: build, clean or (by default) report the state of the compiled build."""
    command = argv[0] if argv else "status"
    if command == "build":
        build()
    elif command == "clean":
        clean()
    elif command != "status":
        print("usage: scripts/compile [status|build|clean]", file=sys.stderr)
        return 2
    print(inspect())
    return 0
