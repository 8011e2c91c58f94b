"""Readings from /proc: CPU time and peak memory of a process tree, and what machine this is."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its living descendants (nginx's workers, for instance)."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far, in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime: fields 14 and 15 of proc(5), counted from the state field (3).
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICKS


def process_cpu_seconds(pid: int) -> float:
    """CPU time of the one process `pid` (all its threads, none of its children), in seconds.

    From the scheduler's nanosecond run times (/proc/PID/task/*/schedstat) where the kernel
    keeps them, since /proc/PID/stat counts whole clock ticks (10 ms), too coarse for a process
    using a few % of a core over a few seconds; else from /proc/PID/stat.
    """
    total_ns, found = 0, False
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total_ns += int((task / "schedstat").read_text().split()[0])
                found = True
    return total_ns / 1e9 if found else cpu_seconds([pid])


def peak_rss_bytes(pids: list[int]) -> int:
    """Sum of the processes' peak resident set sizes (VmHWM)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
    return total


def reset_peak_rss(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS, so the next reading is the peak of one run only.

    Writing 5 to clear_refs does that (Linux 4.0+); False when not allowed, and then the peak
    reported is the peak since the process started.
    """
    try:
        for pid in pids:
            (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_info(tool_versions: dict[str, str]) -> dict[str, Any]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tools": tool_versions,
    }
