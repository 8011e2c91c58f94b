"""`turnout demo` as a user runs it: its ports, and the banner after a restart."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers import TURNOUT, free_port, toml


def demo_config(path: Path, listen: int, admin: int, blue: int) -> Path:
    data = {
        "listen": {"host": "127.0.0.1", "port": listen},
        "admin": {"port": admin},
        "pools": {
            "blue": {"backends": [{"name": "blue-1", "url": f"http://127.0.0.1:{blue}"}]},
            "green": {"backends": [{"name": "green-1", "url": f"http://127.0.0.1:{free_port()}"}]},
            "canary": {
                "backends": [{"name": "canary-1", "url": f"http://127.0.0.1:{free_port()}"}]
            },
        },
        "routes": {
            "checkout": {
                "path_prefix": "/checkout/",
                "mode": "blue-green",
                "pools": ["blue", "green"],
                "active": "blue",
            },
            "web": {"weights": {"blue": 90, "canary": 10}},
        },
    }
    path.write_text(toml(data))
    return path


@contextlib.contextmanager
def demo(config: Path, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TURNOUT, "demo", "--config", str(config), *args], stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def wait_for_banner(process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Ctrl-C stops everything" in text:
            return text
        assert process.poll() is None, text
        time.sleep(0.05)
    raise TimeoutError(log.read_text())


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def listening(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_the_banner_shows_the_restored_live_state(tmp_path: Path) -> None:
    listen, admin = free_port(), free_port()
    config = demo_config(tmp_path / "demo.toml", listen, admin, free_port())
    admin_url = f"http://127.0.0.1:{admin}"
    with demo(config, tmp_path / "first.log") as first:
        banner = wait_for_banner(first, tmp_path / "first.log")
        assert "active blue" in banner
        assert "blue 90%, canary 10%" in banner
        switch = call(f"{admin_url}/v1/routes/checkout/switch", "POST", {"to": "green"})
        assert switch[0] == 200, switch
        weights = {"weights": {"blue": 50, "canary": 50}}
        assert call(f"{admin_url}/v1/routes/web/weights", "PUT", weights)[0] == 200
        first.terminate()
        assert first.wait(15) == 0
    with demo(config, tmp_path / "second.log") as second:
        banner = wait_for_banner(second, tmp_path / "second.log")
    assert "blue-green: active green" in banner
    assert "blue 50%, canary 50%" in banner


def test_taken_ports_are_named_and_can_be_moved(tmp_path: Path) -> None:
    listen, admin, blue = free_port(), free_port(), free_port()
    config = demo_config(tmp_path / "demo.toml", listen, admin, blue)
    with listening(listen), listening(admin), listening(blue):
        result = subprocess.run(
            [TURNOUT, "demo", "--config", str(config)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1
        assert (
            f"127.0.0.1:{listen} is already in use (another process is listening); "
            "choose another with --port" in result.stderr
        )

        other = free_port()
        result = subprocess.run(
            [TURNOUT, "demo", "--config", str(config), "--port", str(other)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert (
            f"admin API: 127.0.0.1:{admin} is already in use (another process is listening); "
            "choose another with --admin-port" in result.stderr
        )

        other_admin = free_port()
        log = tmp_path / "moved.log"
        with demo(config, log, "--port", str(other), "--admin-port", str(other_admin)) as moved:
            banner = wait_for_banner(moved, log)
            assert f"listens on http://127.0.0.1:{other}" in banner
            assert f"admin API on http://127.0.0.1:{other_admin}" in banner
            # The blue backend could not have its port: it took a free one, and the proxy
            # sends blue's traffic there.
            assert f"127.0.0.1:{blue} (backend blue-1) is taken" in banner
            status, body = call(f"http://127.0.0.1:{other}/checkout/")
            assert status == 200
            assert body.startswith(b"blue    blue-1")
            assert call(f"http://127.0.0.1:{other_admin}/ready")[0] == 200
