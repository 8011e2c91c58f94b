"""A real etcd on loopback ports for the fleet's tests (Debian's etcd-server, command `etcd`).

`Etcd` starts one member on ports from helpers.free_port with its own data directory, waits
until it answers, and can be stopped and started again on the same data directory and ports
(the fleet must survive an etcd restart). Nothing is mocked: the fleet's client speaks to it.
`flags` adds etcd options (TLS, auth's token TTL); with `scheme="https"` the member serves
TLS, and `probe_tls` is how start() reaches it (its CA, and a client certificate if asked for).
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers import free_port

ETCD = shutil.which("etcd") or ("/usr/sbin/etcd" if Path("/usr/sbin/etcd").exists() else None)
NO_ETCD = "etcd is not installed (Debian package etcd-server: scripts/apt-tools etcd=etcd-server)"


def _fast_flags() -> list[str]:
    """etcd 3.5+ can skip fsync (tests do not survive power loss); Debian's 3.4 cannot."""
    assert ETCD is not None
    usage = subprocess.run([ETCD, "--help"], capture_output=True, text=True, check=False)
    return ["--unsafe-no-fsync"] if "--unsafe-no-fsync" in usage.stdout + usage.stderr else []


@dataclass
class Etcd:
    """One etcd member: `url` is its client URL, the same across stop() and start()."""

    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    flags: tuple[str, ...] = ()
    scheme: str = "http"
    probe_tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 15.0) -> None:
        assert ETCD is not None
        assert self.process is None, "already running"
        peer = f"http://127.0.0.1:{self.peer_port}"
        command = [
            ETCD,
            "--name=test",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--logger=zap",
            "--log-level=error",
            *_fast_flags(),
            *self.flags,
        ]
        log = (self.data_dir / "etcd.log").open("ab")
        with log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited: {self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(
                    self.url + "/health", timeout=1, context=self.probe_tls
                ) as answer:
                    if b'"true"' in answer.read():
                        return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not answer within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the member (SIGTERM, then SIGKILL); its data directory stays."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self) -> str:
        path = self.data_dir / "etcd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@contextlib.contextmanager
def running_etcd(
    data_dir: Path,
    flags: tuple[str, ...] = (),
    scheme: str = "http",
    probe_tls: ssl.SSLContext | None = None,
) -> Iterator[Etcd]:
    etcd = Etcd(data_dir, flags=flags, scheme=scheme, probe_tls=probe_tls)
    etcd.start()
    try:
        yield etcd
    finally:
        etcd.stop()
