"""The replace hook: real commands (shell scripts in tmp_path) and a real webhook receiver."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from helpers import Backend, Handler, free_port, start_backend
from proxy.control.rolling import hooks
from proxy.control.rolling.hooks import Hook, HookRun, hook_problems, run_hook

URL_PROBLEM = "must be an http:// or https:// URL with a host"
TIMEOUT = "must be a number of seconds greater than 0"
TARGET = {"pool": "blue", "backend": "blue-1", "url": "http://10.0.0.7:8080"}


def script(tmp_path: Path, body: str, name: str = "deploy.sh") -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


async def replace(hook: Hook, session: aiohttp.ClientSession | None = None) -> HookRun:
    return await run_hook(hook, action="replace", session=session, **TARGET)


def gone(pid: int) -> bool:
    """Whether `pid` has ended: no such process, or a zombie (an orphan is reaped by PID 1,
    which in a container may never do it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def wait_gone(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class Children:
    """The pids scripts wrote to files; whatever survives a test is killed after it."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    async def read(self, path: Path, within: float = 5.0) -> int:
        """The pid a script wrote to `path` (once it is written completely)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (pid := written_pid(path)) is not None:
                self.pids.append(pid)
                return pid
            await asyncio.sleep(0.02)
        raise AssertionError(f"{path} was not written")


def written_pid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


@pytest.fixture
def children() -> Iterator[Children]:
    spawned = Children()
    yield spawned
    for pid in spawned.pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def fast_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "KILL_GRACE", 0.3)
    monkeypatch.setattr(hooks, "OUTPUT_GRACE", 0.3)


# Commands


async def test_a_command_sees_the_backend_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cret-from-the-parent")
    seen = tmp_path / "env"
    deploy = script(
        tmp_path,
        'env > "$1"\nreadlink /proc/self/fd/0 >> "$1"\necho "replaced $TURNOUT_BACKEND"\n',
    )
    caplog.set_level(logging.INFO, logger="turnout.rolling.hook")
    result = await replace(Hook(command=(str(deploy), str(seen)), timeout=10))
    assert (result.ok, result.reason, result.tail) == (True, "exit status 0", ("replaced blue-1",))
    lines = seen.read_text().splitlines()
    for expected in (
        "TURNOUT_ACTION=replace",
        "TURNOUT_POOL=blue",
        "TURNOUT_BACKEND=blue-1",
        "TURNOUT_BACKEND_URL=http://10.0.0.7:8080",
        "DEPLOY_TOKEN=s3cret-from-the-parent",  # the parent's environment too
    ):
        assert expected in lines
    assert lines[-1] == "/dev/null"  # stdin
    assert "blue/blue-1 replace: replaced blue-1" in caplog.messages
    assert "s3cret" not in caplog.text


async def test_revert_is_the_action_a_revert_sees(tmp_path: Path) -> None:
    deploy = script(tmp_path, 'echo "$TURNOUT_ACTION"\n')
    result = await run_hook(Hook(command=(str(deploy),)), action="revert", **TARGET)
    assert result.tail == ("revert",)


async def test_a_failing_command_shows_its_last_output_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deploy = script(
        tmp_path,
        'for i in $(seq 1 30); do echo "step $i"; done\n'
        'echo "error: image not found" >&2\n'
        "printf 'no newline at the end'\n"
        "exit 3\n",
    )
    caplog.set_level(logging.INFO, logger="turnout.rolling.hook")
    result = await replace(Hook(command=(str(deploy),), timeout=10))
    assert (result.ok, result.reason) == (False, "exit status 3")
    expected = tuple(f"step {i}" for i in range(13, 31))
    assert result.tail == (*expected, "error: image not found", "no newline at the end")
    assert "blue/blue-1 replace: step 1" in caplog.messages  # every line is logged
    assert "blue/blue-1 replace: error: image not found" in caplog.messages


async def test_long_output_lines_are_cut_in_the_tail(tmp_path: Path) -> None:
    deploy = script(tmp_path, "head -c 100000 /dev/zero | tr '\\0' x\necho\nexit 1\n")
    result = await replace(Hook(command=(str(deploy),), timeout=10))
    (line,) = result.tail
    assert line == "x" * 299 + "…"


async def test_a_command_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    deploy = script(tmp_path, "kill -SEGV $$\n")
    result = await replace(Hook(command=(str(deploy),), timeout=10))
    assert (result.ok, result.reason) == (False, "killed by SIGSEGV")


async def test_a_hanging_command_is_killed_with_its_children_at_its_timeout(
    tmp_path: Path, children: Children
) -> None:
    pid_file = tmp_path / "child.pid"
    deploy = script(tmp_path, f'echo waiting\nsleep 600 &\necho $! > "{pid_file}"\nwait\n')
    started = time.monotonic()
    result = await replace(Hook(command=(str(deploy),), timeout=0.5))
    child = await children.read(pid_file)
    assert (result.ok, result.reason) == (False, "timed out after 0.5 s (killed)")
    assert result.tail == ("waiting",)
    # SIGTERM ended it: no wait for the SIGKILL grace.
    assert 0.5 <= result.seconds < 0.5 + hooks.KILL_GRACE
    assert time.monotonic() - started < 0.5 + hooks.KILL_GRACE
    assert await wait_gone(child)


async def test_what_ignores_sigterm_gets_sigkill_after_the_grace(
    tmp_path: Path, fast_kill: None, children: Children
) -> None:
    pid_file = tmp_path / "child.pid"
    # An ignored signal stays ignored across exec: the sleep ignores SIGTERM too.
    deploy = script(tmp_path, f"trap '' TERM\nsleep 600 &\necho $! > \"{pid_file}\"\nwait\n")
    result = await replace(Hook(command=(str(deploy),), timeout=0.3))
    child = await children.read(pid_file)
    assert result.reason == "timed out after 0.3 s (killed)"
    assert result.seconds >= 0.3 + hooks.KILL_GRACE
    assert await wait_gone(child)


async def test_a_process_the_hook_started_outlives_a_hook_that_exits_in_time(
    tmp_path: Path, fast_kill: None, children: Children
) -> None:
    """A hook may start the backend's new version; one that keeps the hook's output open
    costs OUTPUT_GRACE, not the timeout."""
    pid_file = tmp_path / "server.pid"
    deploy = script(tmp_path, f'sleep 600 &\necho $! > "{pid_file}"\necho started\n')
    result = await replace(Hook(command=(str(deploy),), timeout=30))
    server = await children.read(pid_file)
    assert (result.ok, result.reason, result.tail) == (True, "exit status 0", ("started",))
    assert result.seconds < 5
    assert not gone(server)


async def test_cancelling_the_hook_kills_its_process_group(
    tmp_path: Path, children: Children
) -> None:
    pid_file = tmp_path / "child.pid"
    deploy = script(tmp_path, f'sleep 600 &\necho $! > "{pid_file}"\nwait\n')
    task = asyncio.create_task(replace(Hook(command=(str(deploy),), timeout=60)))
    child = await children.read(pid_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(child)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing.sh", "cannot run {}: No such file or directory"),
        (lambda tmp: tmp, "cannot run {}: Permission denied"),  # a directory
    ],
    ids=["missing", "not-executable"],
)
async def test_a_command_that_cannot_start_says_why(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    program = str(make(tmp_path))
    result = await replace(Hook(command=(program,), timeout=10))
    assert (result.ok, result.reason, result.tail) == (False, reason.format(program), ())


async def test_an_invalid_hook_is_refused() -> None:
    with pytest.raises(ValueError, match="give a command"):
        await replace(Hook())


# Webhooks


@pytest.fixture
async def receivers() -> AsyncIterator[list[Backend]]:
    started: list[Backend] = []
    yield started
    for backend in started:
        await backend.stop()


async def receiver(started: list[Backend], handler: Handler | None = None) -> Backend:
    backend = await start_backend("hook", handler)
    started.append(backend)
    return backend


async def test_a_webhook_receives_the_backend_as_json(
    receivers: list[Backend], caplog: pytest.LogCaptureFixture
) -> None:
    hook = await receiver(receivers)
    caplog.set_level(logging.INFO, logger="turnout.rolling.hook")
    result = await replace(Hook(url=f"{hook.url}/deploy?token=s3cret", timeout=5))
    assert (result.ok, result.reason, result.tail) == (True, "webhook answered 200", ("hook",))
    (seen,) = hook.seen
    assert (seen.method, seen.path) == ("POST", "/deploy?token=s3cret")
    assert seen.header("Content-Type") == "application/json"
    assert orjson.loads(seen.body) == {"action": "replace", **TARGET}
    assert f"{hook.url}/deploy" in caplog.text
    assert "s3cret" not in caplog.text


async def test_a_webhook_answering_503_fails_with_its_answer(receivers: list[Backend]) -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="deploy failed\n\nregistry unreachable\n")

    hook = await receiver(receivers, failing)
    async with aiohttp.ClientSession() as session:
        result = await replace(Hook(url=hook.url, timeout=5), session)
        assert not session.closed  # the caller's session is the caller's to close
    assert (result.ok, result.reason) == (False, "webhook answered 503")
    assert result.tail == ("deploy failed", "registry unreachable")


async def test_a_webhook_redirect_is_not_followed(receivers: list[Backend]) -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    hook = await receiver(receivers, moved)
    result = await replace(Hook(url=hook.url, timeout=5))
    assert (result.ok, result.reason) == (False, "webhook answered 302")
    assert len(hook.seen) == 1


async def test_a_webhook_that_hangs_times_out(receivers: list[Backend]) -> None:
    async def hanging(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.Response()

    hook = await receiver(receivers, hanging)
    result = await replace(Hook(url=hook.url, timeout=0.3))
    assert (result.ok, result.reason) == (False, "timed out after 0.3 s")
    assert result.seconds < 2


async def test_a_webhook_nobody_listens_on_is_refused() -> None:
    result = await replace(Hook(url=f"http://127.0.0.1:{free_port()}/deploy", timeout=5))
    assert (result.ok, result.reason, result.tail) == (False, "connection refused", ())


# Validation


@pytest.mark.parametrize(
    ("hook", "problems"),
    [
        (Hook(command=("./deploy.sh",)), []),
        (Hook(command=("./deploy.sh", "--fast"), timeout=0.5), []),
        (Hook(url="https://deploy.example/hooks?token=x"), []),
        (Hook(url="http://10.0.0.1:9000/"), []),
        (Hook(), [("command", "give a command (an argv list) or a url")]),
        (
            Hook(command=("./deploy.sh",), url="https://deploy.example/"),
            [("url", "give a command or a url, not both")],
        ),
        (Hook(command=("",)), [("command", "the program (the first item) must not be empty")]),
        (
            Hook(command=("./deploy.sh", "a\0b")),
            [("command", "an argument must not contain a NUL character")],
        ),
        (Hook(url="ftp://deploy.example/"), [("url", URL_PROBLEM)]),
        (Hook(url="https:///path"), [("url", URL_PROBLEM)]),
        (Hook(url="http://host:99999/"), [("url", URL_PROBLEM)]),
        (Hook(url="deploy.example"), [("url", URL_PROBLEM)]),
        (Hook(command=("x",), timeout=0), [("timeout", TIMEOUT)]),
        (Hook(command=("x",), timeout=-1), [("timeout", TIMEOUT)]),
        (Hook(command=("x",), timeout=float("nan")), [("timeout", TIMEOUT)]),
        (Hook(command=("x",), timeout=float("inf")), [("timeout", TIMEOUT)]),
        (
            Hook(timeout=0),
            [("command", "give a command (an argv list) or a url"), ("timeout", TIMEOUT)],
        ),
    ],
)
def test_hook_problems(hook: Hook, problems: list[tuple[str, str]]) -> None:
    assert hook_problems(hook) == problems
