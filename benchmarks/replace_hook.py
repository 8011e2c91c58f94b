"""A replace hook for in-place pool rollouts that really stops and starts a backend program:
`python -m benchmarks.replace_hook DIRECTORY --old v1 --new v2 [...]`.

turnout runs it (argv, no shell) with TURNOUT_ACTION (`replace` or `revert`), TURNOUT_POOL,
TURNOUT_BACKEND and TURNOUT_BACKEND_URL in its environment. It stops the process serving that
backend (its pid in DIRECTORY/BACKEND.pid, written by benchmarks.versioned_backend once it
listens): SIGTERM, then it waits for the process to be gone (it finishes its requests in
flight first). Then it starts the new version (`replace`) or the old one (`revert`) on the
same port, its output into DIRECTORY/BACKEND.log, never into the hook's own output (turnout
reads that until the hook exits, see proxy.control.rolling.hooks), in a session of its own
(a daemon: nothing done to the hook's process group reaches it), waits until it listens and
exits 0. What it does is printed, for the rollout's `hooks[].tail`.

For the failure scenarios: `--hang` makes it wait for ever on a child `sleep` (its pid in
DIRECTORY/BACKEND.hang.pid) before touching anything, `--fail STATUS` prints a few lines and
exits with STATUS; `--only ACTION` limits either to that action.

`launch`, `stop` and `running` are the same steps for a scenario's own use: the first version
of each backend is started by the scenario, with `launch` (benchmarks.roll_fleet), and stopped
at its end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LISTEN_TIMEOUT = 15.0
"""Seconds a started backend has to listen."""
STOP_TIMEOUT = 30.0
"""Seconds a stopped backend has to finish its requests in flight before SIGKILL."""


@dataclass(frozen=True, slots=True)
class Program:
    """A version of the backend program and how it behaves."""

    version: str
    error_rate: float = 0.0
    slow_path: str = "/slow"
    slow_seconds: float = 2.0

    def argv(self, port: int, pidfile: Path) -> list[str]:
        return [
            sys.executable,
            *("-m", "benchmarks.versioned_backend", "--port", str(port)),
            *("--version", self.version, "--error-rate", str(self.error_rate)),
            *("--slow-path", self.slow_path, "--slow-seconds", str(self.slow_seconds)),
            *("--pidfile", str(pidfile)),
        ]


def pidfile(directory: Path, backend: str) -> Path:
    return directory / f"{backend}.pid"


def alive(pid: int) -> bool:
    """Whether `pid` is a running process. A zombie is not: it has exited and waits for a
    parent's reaping, which for a daemon (its parent gone) may never come."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ...": comm may hold spaces and parentheses.
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def launch(directory: Path, backend: str, port: int, program: Program) -> subprocess.Popen[bytes]:
    """Start `program` for `backend` on `port` and wait until it listens. RuntimeError when it
    exits or does not listen in time (with its log's last lines). The caller keeps the
    process (a scenario stops it at its end; the hook exits and leaves it running)."""
    log_path = directory / f"{backend}.log"
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            program.argv(port, pidfile(directory, backend)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + LISTEN_TIMEOUT
    # The pidfile is written once it listens: the one check that names our process (a
    # connection could reach an old process not yet gone).
    path = pidfile(directory, backend)
    while not (path.exists() and path.read_text().strip() == str(child.pid)):
        if child.poll() is not None or time.monotonic() > deadline:
            state = "exited" if child.poll() is not None else "is not listening"
            lines = log_path.read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"{program.version} on port {port} {state}: {' | '.join(lines)}")
        time.sleep(0.02)
    return child


def running(directory: Path, backend: str) -> int | None:
    """The pid serving `backend`, if one is."""
    try:
        pid = int(pidfile(directory, backend).read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def stop(directory: Path, backend: str, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM to the process serving `backend`, and wait until it is gone (SIGKILL after
    `timeout`); its pid, None when none was running."""
    pid = running(directory, backend)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)
    return pid


def port_of(url: str) -> int:
    parts = urlsplit(url)
    if parts.port is None:
        raise ValueError(f"no port in {url!r}")
    return parts.port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where the pidfiles and logs are")
    parser.add_argument("--old", required=True, help="the version a revert starts")
    parser.add_argument("--new", required=True, help="the version a replace starts")
    parser.add_argument("--new-error-rate", type=float, default=0.0)
    parser.add_argument("--slow-path", default="/slow")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--hang", action="store_true", help="wait for ever on a child sleep")
    parser.add_argument("--fail", type=int, metavar="STATUS", help="print and exit STATUS")
    parser.add_argument("--only", choices=("replace", "revert"), help="--hang/--fail only then")
    args = parser.parse_args(argv)
    try:
        action = os.environ["TURNOUT_ACTION"]
        backend = os.environ["TURNOUT_BACKEND"]
        url = os.environ["TURNOUT_BACKEND_URL"]
    except KeyError as missing:
        print(f"{missing.args[0]} is not set: run me as turnout's replace hook", file=sys.stderr)
        return 2
    pool = os.environ.get("TURNOUT_POOL", "?")
    print(f"{action} {pool}/{backend} at {url}", flush=True)
    if args.only in (None, action):
        if args.hang:
            sleeper = subprocess.Popen(["sleep", "3600"])
            (args.directory / f"{backend}.hang.pid").write_text(f"{sleeper.pid}\n")
            print(f"hanging on sleep (pid {sleeper.pid})", flush=True)
            sleeper.wait()
        if args.fail is not None:
            print(f"pulling {args.new} for {backend}", flush=True)
            print(f"error: image {args.new} not found in the registry", flush=True)
            print(f"giving up on {backend}: nothing was changed", flush=True)
            return int(args.fail)
    version = args.new if action == "replace" else args.old
    rate = args.new_error_rate if action == "replace" else 0.0
    program = Program(version, rate, args.slow_path, args.slow_seconds)
    stopped = stop(args.directory, backend)
    print(f"stopped pid {stopped}" if stopped else "nothing was running", flush=True)
    try:
        child = launch(args.directory, backend, port_of(url), program)
    except (RuntimeError, ValueError) as error:
        print(f"cannot start {version}: {error}", flush=True)
        return 1
    print(f"{version} serving {backend} (pid {child.pid})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
