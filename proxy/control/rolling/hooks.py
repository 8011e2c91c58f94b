"""The replace hook of an in-place pool rollout: a command or a webhook, with a timeout.

Theory of operation. In place, the program behind a backend is replaced by something outside
turnout; the control plane calls it once per backend and action (`replace`, or `revert` when a
rollout is undone) and waits for its answer. `run_hook` never raises for what the hook does:
every outcome is a `HookRun` whose `reason` is in words, for the rollout's status.

A command is an argv list run without a shell, with the parent's environment plus
TURNOUT_ACTION, TURNOUT_POOL, TURNOUT_BACKEND and TURNOUT_BACKEND_URL, stdin from /dev/null,
stdout and stderr into one pipe that is logged line by line (logger `turnout.rolling.hook`).
It runs in a session of its own, so that at its timeout, or when the rollout is aborted while
it runs, the *whole process group* gets SIGTERM and, whatever is left after `KILL_GRACE`,
SIGKILL: a script stuck in `sleep 600` must not leave the sleep behind. A hook that exits in
time is never signalled, and neither is what it started: a hook may start the new version of
the backend. Such a process should not keep the hook's output open (redirect it, as a daemon
does); if it does, the output is read for `OUTPUT_GRACE` after the hook exits and then closed,
so the process gets EPIPE (or SIGPIPE) on its next write there. A process that leaves the
group (setsid, as a double-forking daemon does) is beyond the hook's timeout.

A webhook receives the same four values as a JSON POST; a 2xx answer is done, anything else
(redirects are not followed) or a connection error fails. Its URL is logged without the
userinfo and query, which may hold secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import orjson

from proxy.control.rolling.output import TAIL_CHARS, LineSplitter, Tail, shorten
from proxy.control.rollout.notify import HEADERS, redact

log = logging.getLogger("turnout.rolling.hook")

Action = Literal["replace", "revert"]

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL to a hook's process group."""
OUTPUT_GRACE = 1.0
"""Seconds the output is still read after the hook exited (what it wrote last may lag)."""
BODY_BYTES = 4096
"""Bytes of a webhook's answer read for the result's `tail`."""
BODY_LINES = 5
"""Lines of a webhook's answer kept in the result's `tail`."""


@dataclass(frozen=True, slots=True)
class Hook:
    """What replaces a backend: a command (argv, no shell) or a webhook URL, exactly one."""

    command: tuple[str, ...] = ()
    url: str | None = None
    timeout: float = 300.0
    """Seconds the hook may take; a command still running then is killed."""


@dataclass(frozen=True, slots=True)
class HookRun:
    """What one run of a hook came to (the controller turns it into the machine's
    model.HookResult, which also names the backend and the action)."""

    ok: bool
    reason: str
    """In words, for the rollout's status: "exit status 3", "webhook answered 503"."""
    tail: tuple[str, ...]
    """A command's last output lines, or a webhook answer's first lines."""
    seconds: float


def hook_problems(hook: Hook) -> list[tuple[str, str]]:
    """What is wrong with `hook`, as (field, message) pairs; empty when it can run."""
    problems: list[tuple[str, str]] = []
    if hook.command and hook.url is not None:
        problems.append(("url", "give a command or a url, not both"))
    elif not hook.command and hook.url is None:
        problems.append(("command", "give a command (an argv list) or a url"))
    if hook.command:
        if not hook.command[0]:
            problems.append(("command", "the program (the first item) must not be empty"))
        if any("\0" in argument for argument in hook.command):
            problems.append(("command", "an argument must not contain a NUL character"))
    if hook.url is not None:
        try:
            parts = urlsplit(hook.url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            valid = False
        if not valid:
            problems.append(("url", "must be an http:// or https:// URL with a host"))
    if not (hook.timeout > 0 and math.isfinite(hook.timeout)):
        problems.append(("timeout", "must be a number of seconds greater than 0"))
    return problems


async def run_hook(
    hook: Hook,
    *,
    action: Action,
    pool: str,
    backend: str,
    url: str,
    session: aiohttp.ClientSession | None = None,
) -> HookRun:
    """Run `hook` for one backend and return how it went (it does not raise for the hook's
    failures). `session`: for a webhook, the session to post with (a new one otherwise).
    Cancelling the call kills a running command's process group before CancelledError
    propagates. Raises ValueError if `hook` has `hook_problems`."""
    problems = hook_problems(hook)
    if problems:
        raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
    label = f"{pool}/{backend} {action}"
    if hook.url is not None:
        body = orjson.dumps({"action": action, "pool": pool, "backend": backend, "url": url})
        return await _post(hook, body, label, session)
    environment = {
        **os.environ,
        "TURNOUT_ACTION": action,
        "TURNOUT_POOL": pool,
        "TURNOUT_BACKEND": backend,
        "TURNOUT_BACKEND_URL": url,
    }
    return await _execute(hook, environment, label)


class _Output(asyncio.Protocol):
    """The read end of a hook's output pipe: logs each line, keeps the tail."""

    def __init__(self, label: str, closed: asyncio.Future[None]) -> None:
        self._label = label
        self._splitter = LineSplitter()
        self.tail = Tail()
        self.closed = closed

    def data_received(self, data: bytes) -> None:
        for line in self._splitter.feed(data):
            self._line(line)

    def connection_lost(self, exc: Exception | None) -> None:
        for line in self._splitter.end():
            self._line(line)
        if not self.closed.done():
            self.closed.set_result(None)

    def _line(self, line: str) -> None:
        log.info("%s: %s", self._label, line)
        self.tail.add(line)


async def _execute(hook: Hook, environment: dict[str, str], label: str) -> HookRun:
    command, timeout = hook.command, hook.timeout
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    # Our own pipe rather than asyncio's: the process's exit must not wait for the pipe's end,
    # which a process the hook started may hold open for ever.
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            env=environment,
            start_new_session=True,
        )
    except (OSError, ValueError) as error:
        os.close(read_fd)
        words = getattr(error, "strerror", None) or str(error)
        log.warning("%s: cannot run %s: %s", label, command[0], words)
        return HookRun(False, f"cannot run {command[0]}: {words}", (), _since(started))
    finally:
        os.close(write_fd)
    log.info("%s: running %s (pid %d, timeout %g s)", label, command[0], process.pid, timeout)
    closed: asyncio.Future[None] = loop.create_future()
    output = _Output(label, closed)
    transport: asyncio.BaseTransport | None = None
    try:
        pipe = os.fdopen(read_fd, "rb", 0)
        transport, _ = await loop.connect_read_pipe(lambda: output, pipe)
        try:
            async with asyncio.timeout(timeout):
                status = await process.wait()
        except TimeoutError:
            log.warning("%s: timed out after %g s; killing its process group", label, timeout)
            await _end_group(process)
            ok, reason = False, f"timed out after {timeout:g} s (killed)"
        else:
            ok, reason = status == 0, _exit_words(status)
        done, _ = await asyncio.wait({closed}, timeout=OUTPUT_GRACE)
        if not done:
            log.warning(
                "%s: a process the hook started keeps its output open; no longer read", label
            )
    except BaseException:
        # Cancelled (the rollout was aborted): nothing the hook started may outlive it.
        if process.returncode is None:
            log.warning("%s: cancelled; killing its process group", label)
            await _end_group(process)
        raise
    finally:
        if transport is not None:
            transport.close()
    seconds = _since(started)
    log.log(logging.INFO if ok else logging.WARNING, "%s: %s after %.1f s", label, reason, seconds)
    return HookRun(ok, reason, output.tail.lines(), seconds)


async def _end_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group, SIGKILL to what is left of it after KILL_GRACE; reaps
    the leader. A second cancellation while waiting still sends the SIGKILL."""
    group = process.pid  # start_new_session: the leader's pid is the group's id
    empty = False
    try:
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while time.monotonic() < deadline:
            if not _group_alive(group):
                empty = True
                break
            await asyncio.sleep(0.05)
    finally:
        if not empty:
            _signal_group(group, signal.SIGKILL)
    await process.wait()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    """Whether a process of the group is still running. Zombies do not count: the leader's
    waits for our reaping, an orphan's for an init that may never reap it, and neither can do
    anything more."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: the signal's answer is all there is
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


def _exit_words(status: int) -> str:
    if status >= 0:
        return f"exit status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"killed by {name}"


def _since(started: float) -> float:
    return time.monotonic() - started


async def _post(
    hook: Hook, body: bytes, label: str, session: aiohttp.ClientSession | None
) -> HookRun:
    assert hook.url is not None
    url, timeout = hook.url, hook.timeout
    started = time.monotonic()
    shown = redact(url)
    log.info("%s: posting to %s (timeout %g s)", label, shown, timeout)
    own = session is None
    client = aiohttp.ClientSession() if session is None else session
    tail: tuple[str, ...] = ()
    try:
        async with client.post(
            url,
            data=body,
            headers=HEADERS,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            answer = await response.content.read(BODY_BYTES)
        splitter = LineSplitter()
        lines = splitter.feed(answer) + splitter.end()
        tail = tuple(shorten(line, TAIL_CHARS) for line in lines if line.strip())[:BODY_LINES]
        ok = 200 <= status < 300
        reason = f"webhook answered {status}"
    except TimeoutError:
        ok, reason = False, f"timed out after {timeout:g} s"
    except aiohttp.ClientConnectorError as error:
        ok = False
        if isinstance(error.os_error, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = f"connect failed: {error.os_error.strerror or type(error.os_error).__name__}"
    # Only the type: these errors' messages may quote the URL.
    except aiohttp.ClientError as error:
        ok, reason = False, type(error).__name__
    finally:
        if own:
            await client.close()
    seconds = _since(started)
    log.log(logging.INFO if ok else logging.WARNING, "%s: %s: %s", label, shown, reason)
    return HookRun(ok, reason, tail, seconds)
