"""Running the `turnout` admin commands as an operator runs them: subprocesses of the installed
entry point, with the admin URL (and token) from the environment, as in a script."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from helpers import TURNOUT


@dataclass
class Run:
    """What a `turnout` command did."""

    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.out)


async def turnout(url: str | None, *args: str, token: str | None = None) -> Run:
    """`turnout ARGS` with the admin URL (and token) from the environment, as in a script."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    if url is not None:
        env["TURNOUT_ADMIN_URL"] = url
    if token is not None:
        env["TURNOUT_ADMIN_TOKEN"] = token
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        TURNOUT,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode(), time.monotonic() - started)
