"""`turnout` commands that drive a running instance through its admin API.

`register()` adds them to the `turnout` parser (proxy.cli). Each prints plain aligned tables by
default and the API's JSON with `--json` (never made from the text: a JSON reader does not
depend on how the text renders). Exit status: 0 done, 1 the API refused (its problem on
stderr: title, detail, every errors[] entry, each once), 2 a usage error (argparse's own, or
e.g. `blue=ninety`), 3 the admin API could not be reached. Only the standard library and
admin_api.client are imported, so these commands start fast and need nothing of the server.

Modules: `parser` (the command lines, with examples that run against config.example.toml),
`commands` (one function per command), `args` (argument types), `render` (pure: JSON in, text
out), `output` (stdout, stderr, exit codes).
"""

from __future__ import annotations

from admin_api.cli.parser import register

__all__ = ["register"]
