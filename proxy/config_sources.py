"""Where a configuration comes from: the TOML file, then `TURNOUT_*` environment variables.

Order in the file is meaning: routes match in the order they are written, and the first pool of
a split is its baseline, from which every sticky bucket is laid out. So the environment is merged
*into* the file: an override replaces a value where it stands, and a key the file does not have
goes after the file's keys. (pydantic-settings' own merge starts from the environment's keys,
which moved an overridden route, or weight, to the front.)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, EnvSettingsSource

ENV_PREFIX = "TURNOUT_"
ENV_DELIMITER = "__"


def read_file(path: Path) -> dict[str, Any]:
    """The file's tables, in the file's order; raises tomllib.TOMLDecodeError."""
    with path.open("rb") as file:
        return tomllib.load(file)


def read_environment(settings: type[BaseSettings]) -> dict[str, Any]:
    """`TURNOUT_A__B=value` as {"a": {"b": "value"}} (JSON decoded where the option is a table
    or a list); raises pydantic_settings.SettingsError on a value that does not decode."""
    source = EnvSettingsSource(settings, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER)
    return source()


def merged(file: Mapping[str, Any], environment: Mapping[str, Any]) -> dict[str, Any]:
    """`file` with `environment` merged in, table by table; the file's order first."""
    result = dict(file)
    for key, value in environment.items():
        here = result.get(key)
        if isinstance(here, Mapping) and isinstance(value, Mapping):
            result[key] = merged(here, value)
        else:
            result[key] = value  # an existing key keeps its place in a dict
    return result
