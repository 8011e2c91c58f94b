"""Every problem of a configuration in one report: field errors and cross-field errors together.

pydantic checks fields; `router.build` checks what spans fields (a weight naming an unknown pool,
a regex, a blue-green route's active pool), and needs a whole, valid configuration to do it. So
that a file with both kinds is reported in one round, `check_fields` sets the unusable values
aside until what remains validates:

- a field goes back to its default (the key is removed);
- a list item whose required field is unusable leaves its list;
- a pool or route that is not a table becomes an empty one: its name stays defined, so no route
  is told that it names an unknown pool.

The cross-field check then runs on the remainder, and `Checked.locate` keeps only what it says
about the parts not set aside (those have their error already, and what is said about a stand-in
is noise). It also gives a list item its place in the file back: a problem in the second rule is
reported as rules[1] even when the first rule was set aside.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from proxy.config_sources import ENV_DELIMITER, ENV_PREFIX

Model = TypeVar("Model", bound=BaseModel)
Loc = tuple[str | int, ...]

NAMED_TABLES = ("pools", "routes")
"""Tables of named tables: a name there is defined even when its table is unusable."""

SHAPING = ("mode",)
"""Fields that decide which of their siblings apply: with one set aside, nothing the cross-field
check says about its route can be trusted (a `mode` typo would bring "weights missing")."""

_MAX_ROUNDS = 100
_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@dataclass
class Checked(Generic[Model]):
    """The outcome of `check_fields`."""

    model: Model | None
    """The configuration with every unusable part set aside; None when nothing could be kept
    (the cross-field check is then skipped)."""
    problems: list[str]
    """The field errors, described, in pydantic's order (the file's sections, in turn)."""
    aside: list[Loc] = field(default_factory=list)
    """Where parts were set aside, in the file's terms."""
    kept: dict[Loc, list[int]] = field(default_factory=dict)
    """For each list an item left: the file's index of each item that remains."""

    def locate(self, where: str) -> str | None:
        """A cross-field problem's field (`routes.web.rules[0].value`, in the remainder's
        terms) in the file's terms; None when it concerns a part set aside."""
        loc = self.original(_parse(where))
        for aside in self.aside:
            common = min(len(aside), len(loc))
            if aside[:common] == loc[:common]:
                return None
        return describe_location(loc)

    def original(self, loc: Loc) -> Loc:
        """`loc` in the remainder, in the file's terms."""
        found: list[str | int] = []
        for part in loc:
            kept = self.kept.get(tuple(found))
            if isinstance(part, int) and kept is not None and part < len(kept):
                part = kept[part]
            found.append(part)
        return tuple(found)


def check_fields(model: type[Model], data: dict[str, Any]) -> Checked[Model]:
    """Validate `data` as `model`, setting aside what does not validate (see the module)."""
    checked: Checked[Model] = Checked(None, [])
    remainder = _copy(data)
    for round_ in range(_MAX_ROUNDS):
        try:
            checked.model = model.model_validate(remainder)
            return checked
        except ValidationError as error:
            errors = error.errors()
        for item in errors:
            loc = checked.original(item["loc"])
            # Later rounds see what setting aside caused ("Field required" where a key was
            # removed) and validators that could not run before: only the latter are news.
            if round_ == 0 or (item["type"] != "missing" and not _beside(loc, checked.aside)):
                checked.problems.append(describe(loc, item["msg"]))
        targets = {_target(remainder, tuple(item["loc"])) for item in errors}
        if () in targets:
            return checked  # an error of the whole: nothing to keep
        # The last item of a list first, so that the indices of the others still hold.
        for path in sorted(targets, key=_order, reverse=True):
            _set_aside(remainder, path, checked)
    return checked


def describe(loc: Loc, message: str) -> str:
    """`section.option: message`, with the environment variable that could also have set it."""
    location = describe_location(loc)
    message = message.removeprefix("Value error, ")
    if not location:
        return message
    if any(isinstance(part, int) for part in loc):
        return f"{location}: {message}"  # no variable reaches into a list
    env = ENV_PREFIX + ENV_DELIMITER.join(str(part) for part in loc).upper()
    return f"{location}: {message} (in the file, or {env} if set)"


def describe_location(loc: Loc) -> str:
    location = ""
    for part in loc:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    return location


def _target(data: dict[str, Any], loc: Loc) -> Loc:
    """What to set aside for an error at `loc` (the remainder's terms); () for everything."""
    # The deepest part of `loc` present in the data: for a required field that is missing,
    # the item that lacks it; for a union, the field (its error adds the member it tried,
    # "workers.int", which is no key of the data).
    path: list[str | int] = []
    here: Any = data
    for part in loc:
        in_table = isinstance(here, Mapping) and part in here
        in_list = isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here)
        if not (in_table or in_list):
            break
        here = here[part]
        path.append(part)
    return tuple(path)


def _order(path: Loc) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def _set_aside(data: dict[str, Any], path: Loc, checked: Checked[Any]) -> None:
    """Remove what `path` (in the remainder's terms) points to, if it is still there."""
    *parents, last = path
    container: Any = data
    for part in parents:
        try:
            container = container[part]
        except (KeyError, IndexError, TypeError):
            return  # inside a part already set aside
    original = checked.original(tuple(path))
    checked.aside.append(original)
    if len(path) == 2 and path[0] in NAMED_TABLES:
        container[last] = {}
    elif isinstance(container, list):
        assert isinstance(last, int)
        kept = checked.kept.setdefault(original[:-1], list(range(len(container))))
        del container[last], kept[last]
    else:
        container.pop(last, None)
    if len(path) >= 3 and path[0] == "routes" and path[2] in SHAPING:
        checked.aside.append(original[:2])


def _beside(loc: Loc, asides: list[Loc]) -> bool:
    """Whether an error at `loc` may judge the remainder rather than the file: it lies in a part
    set aside, or beside one (a validator that reads its siblings, as admin.host reads
    admin.tokens, would be told of tokens the file does have)."""
    if len(loc) < 2:
        return any(loc[: len(aside)] == aside for aside in asides)
    return any(aside[: len(loc) - 1] == loc[:-1] for aside in asides)


def _parse(where: str) -> Loc:
    return tuple(int(index) if index else name for index, name in _PART.findall(where))


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {key: _copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_copy(item) for item in data]
    return data
