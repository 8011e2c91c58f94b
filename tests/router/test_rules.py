"""The control plane's rules that need no I/O, as pure functions (router.preconditions,
router.guards.require_out_of_service): every writer gets them from the same place."""

from __future__ import annotations

import pytest

from router import BackendSpec, PoolSpec, Spec
from router.guards import BackendInService, require_out_of_service
from router.preconditions import PreconditionFailed, require_revision


@pytest.mark.parametrize(
    ("if_match", "current", "refused"),
    [
        (None, 7, False),  # no precondition
        (frozenset({7}), 7, False),
        (frozenset({6, 7}), 7, False),  # any of a list
        (frozenset({6}), 7, True),  # stale
        (frozenset(), 7, True),  # only weak or foreign tags: never matches
    ],
)
def test_if_match_is_met_by_the_current_revision_only(
    if_match: frozenset[int] | None, current: int, refused: bool
) -> None:
    if refused:
        with pytest.raises(PreconditionFailed) as error:
            require_revision(if_match, current)
        assert error.value.current == current
    else:
        require_revision(if_match, current)


def test_the_refusal_names_the_stale_revisions() -> None:
    cases = {
        (): "If-Match names no revision (a weak tag never matches); the current revision is 7",
        (5,): "revision 5 is stale; the current revision is 7",
        (6, 5): "revisions 5, 6 are stale; the current revision is 7",
    }
    for expected, message in cases.items():
        with pytest.raises(PreconditionFailed) as error:
            require_revision(frozenset(expected), 7)
        assert str(error.value) == message


SPEC = Spec(
    pools=(
        PoolSpec(
            "p",
            (
                BackendSpec("ready", "127.0.0.1", 1),
                BackendSpec("drain", "127.0.0.1", 2, admin_state="drain"),
                BackendSpec("maint", "127.0.0.1", 3, admin_state="maint"),
            ),
        ),
    ),
    routes=(),
)


@pytest.mark.parametrize(
    ("pool", "backend", "refused"),
    [
        ("p", "ready", True),
        ("p", "drain", False),
        ("p", "maint", False),
        ("p", "nope", False),  # unknown: the edit refuses it, with its own error
        ("nope", "ready", False),
    ],
)
def test_only_a_backend_out_of_service_may_be_removed(
    pool: str, backend: str, refused: bool
) -> None:
    if refused:
        with pytest.raises(BackendInService) as error:
            require_out_of_service(SPEC, pool, backend)
        assert (error.value.pool, error.value.backend) == (pool, backend)
    else:
        require_out_of_service(SPEC, pool, backend)
