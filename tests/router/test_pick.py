"""pick_backend: weighted power of two choices on in-flight counts, with fixed rolls."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from router import BackendSpec, Pool, PoolSpec, Spec, build_snapshot, pick_backend
from router.spec import AdminState

Q = 1 << 30
"""A quarter of the 32-bit draw range: with four equal weights, draw value i*Q picks index i."""
TOP = 0xFFFF_FFFF
"""The largest 32-bit draw: always the last backend."""


@dataclass(frozen=True)
class Load:
    inflight: int


def _pool(*weights: int, states: tuple[AdminState, ...] = ()) -> Pool:
    backends = tuple(
        BackendSpec(
            f"b{index}",
            "127.0.0.1",
            9000 + index,
            weight=weight,
            admin_state=states[index] if states else "ready",
        )
        for index, weight in enumerate(weights)
    )
    return build_snapshot(Spec(pools=(PoolSpec("p", backends),), routes=())).pools["p"]


def _roll(first: int, second: int) -> int:
    """The low 32 bits make the first draw, the high 32 bits the second."""
    return (second << 32) | first


def _loads(*inflight: int) -> list[Load]:
    return [Load(n) for n in inflight]


@pytest.mark.parametrize(
    ("weights", "inflight", "roll", "expected"),
    [
        # Four equal weights: draw i*Q is backend i.
        pytest.param((1, 1, 1, 1), (0, 0, 0, 0), _roll(0, 3 * Q), 0, id="tie-goes-to-first"),
        pytest.param((1, 1, 1, 1), (0, 0, 0, 0), _roll(3 * Q, 0), 3, id="tie-goes-to-first-b"),
        pytest.param((1, 1, 1, 1), (5, 0, 0, 0), _roll(0, 3 * Q), 3, id="less-loaded-wins"),
        pytest.param((1, 1, 1, 1), (0, 0, 0, 5), _roll(0, 3 * Q), 0, id="less-loaded-wins-b"),
        pytest.param((1, 1, 1, 1), (0, 0, 99, 0), _roll(2 * Q, 2 * Q), 2, id="same-draw-chosen"),
        pytest.param((1, 1, 1, 1), (0, 0, 0, 0), _roll(Q - 1, Q), 0, id="draw-boundaries"),
        pytest.param((1, 1, 1, 1), (1, 0, 0, 0), _roll(Q - 1, Q), 1, id="draw-boundaries-b"),
        # Weights 1:3 (cumulative 1, 4): only the lowest quarter of the range draws b0.
        pytest.param((1, 3), (0, 0), _roll(Q - 1, Q - 1), 0, id="weighted-draw-low"),
        pytest.param((1, 3), (0, 0), _roll(Q, Q), 1, id="weighted-draw-high"),
        pytest.param((1, 3), (0, 0), _roll(0xFFFF_FFFF, 0xFFFF_FFFF), 1, id="weighted-draw-top"),
        # Load is compared per unit of weight: 1/1 vs 2/3, so b1 wins; 1/1 vs 3/3 ties to first.
        pytest.param((1, 3), (1, 2), _roll(0, Q), 1, id="load-per-weight"),
        pytest.param((1, 3), (1, 3), _roll(0, Q), 0, id="load-per-weight-tie"),
        pytest.param((1, 3), (1, 4), _roll(0, Q), 0, id="load-per-weight-b"),
        # Bits above 64 are ignored.
        pytest.param(
            (1, 1, 1, 1), (0, 0, 0, 0), (1 << 64) | _roll(2 * Q, 2 * Q), 2, id="high-bits"
        ),
    ],
)
def test_pick_fixed_rolls(
    weights: tuple[int, ...], inflight: tuple[int, ...], roll: int, expected: int
) -> None:
    assert pick_backend(_pool(*weights), _loads(*inflight), roll) == expected


# Computed once with the shipped implementation (random.Random(1234).getrandbits(64)).
GOLDEN_ROLLS = [
    0xC735DF5EF7697FB9,
    0x1DE9EA6670D3DA1F,
    0x17346B4501EAF614,
    0xF149F542E935B870,
    0xCE97B5BDF073EED1,
    0x08F0EBD4950CDDD9,
    0xB16E2D5CABEB9592,
    0x19322FED157CF9C6,
    0x5AC96628C4381836,
    0x04762A223C9F90C9,
    0xFC9799A707E36D60,
    0x040E1E30C9ED0248,
]


@pytest.mark.parametrize(
    ("inflight", "expected"),
    [
        ((0, 0, 0, 0), [3, 2, 0, 3, 3, 2, 3, 0, 3, 1, 0, 3]),
        ((0, 3, 1, 8), [3, 2, 0, 3, 3, 0, 3, 0, 2, 0, 0, 0]),
    ],
)
def test_pick_golden_sequence(inflight: tuple[int, ...], expected: list[int]) -> None:
    pool = _pool(1, 2, 3, 4)
    loads = _loads(*inflight)
    assert [pick_backend(pool, loads, roll) for roll in GOLDEN_ROLLS] == expected


def _shares(pool: Pool, loads: list[Load], count: int, seed: int) -> dict[int, float]:
    rng = random.Random(seed)
    picks = Counter(pick_backend(pool, loads, rng.getrandbits(64)) for _ in range(count))
    assert None not in picks
    return {index: 100.0 * picks[index] / count for index in range(len(pool.eligible))}


@pytest.mark.parametrize(
    ("weights", "inflight"),
    [
        ((1, 2, 3, 4), (0, 0, 0, 0)),
        ((1, 1), (0, 0)),
        ((5, 1), (0, 0)),
        # Equal weights and equal (non-zero) loads: every comparison ties, so the draw decides.
        ((1, 1, 1), (4, 4, 4)),
    ],
)
def test_weights_respected_when_loads_equal(
    weights: tuple[int, ...], inflight: tuple[int, ...]
) -> None:
    shares = _shares(_pool(*weights), _loads(*inflight), 20_000, seed=99)
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert shares[index] == pytest.approx(100.0 * weight / total, abs=1.5), shares


def test_heavily_loaded_backend_avoided() -> None:
    pool = _pool(1, 1, 1, 1)
    loads = _loads(0, 50, 0, 0)
    rng = random.Random(5)
    picked_busy = 0
    for _ in range(20_000):
        roll = rng.getrandbits(64)
        first = ((roll & 0xFFFF_FFFF) * 4) >> 32
        second = ((roll >> 32) * 4) >> 32
        choice = pick_backend(pool, loads, roll)
        if first != second:
            # Whenever the busy backend is drawn against an idle one, it loses.
            assert choice != 1
            assert choice in (first, second)
        else:
            assert choice == first
        picked_busy += choice == 1
    # It still gets the requests where both draws land on it: 1/16 of them.
    assert 100.0 * picked_busy / 20_000 == pytest.approx(100 / 16, abs=1.0)


@pytest.mark.parametrize(
    ("roll", "exclude", "expected"),
    [
        # Three equal weights: draw 0 is b0, draw TOP is b2.
        pytest.param(_roll(0, 0), {0}, 1, id="wraps-to-next"),
        pytest.param(_roll(TOP, TOP), {2}, 0, id="wraps-past-end"),
        pytest.param(_roll(0, TOP), {0, 1}, 2, id="two-excluded"),
        pytest.param(_roll(0, TOP), {0, 1, 2}, None, id="all-excluded"),
        pytest.param(_roll(0, TOP), set(), 0, id="empty-exclude"),
        pytest.param(_roll(0, TOP), {0}, 1, id="excluded-draw-moves"),
        # Duplicates and out-of-range indices must not hide a backend still free.
        pytest.param(_roll(0, TOP), [0, 0, 1], 2, id="duplicates-in-exclude"),
        pytest.param(_roll(0, TOP), {0, 1, 7}, 2, id="out-of-range-in-exclude"),
    ],
)
def test_exclude_fixed_rolls(
    roll: int, exclude: set[int] | list[int], expected: int | None
) -> None:
    assert pick_backend(_pool(1, 1, 1), _loads(0, 0, 0), roll, exclude) == expected


@pytest.mark.parametrize("exclude", [{0}, {1}, {2}, {0, 2}, {1, 2}])
def test_exclude_never_picked(exclude: set[int]) -> None:
    pool = _pool(1, 2, 3)
    loads = _loads(0, 5, 1)
    rng = random.Random(11)
    picks = {pick_backend(pool, loads, rng.getrandbits(64), exclude) for _ in range(2000)}
    assert picks == {0, 1, 2} - exclude


def test_empty_pool_returns_none() -> None:
    pool = _pool(1, 1, states=("maint", "drain"))
    assert pool.eligible == ()
    assert pick_backend(pool, [], 12345) is None


@pytest.mark.parametrize("roll", [0, 1, 2**32 - 1, 2**64 - 1])
def test_single_backend(roll: int) -> None:
    assert pick_backend(_pool(3), _loads(1000), roll) == 0
    assert pick_backend(_pool(3), _loads(0), roll, exclude={0}) is None


def test_indices_refer_to_eligible_backends() -> None:
    pool = _pool(1, 1, 1, states=("drain", "ready", "maint"))
    assert [backend.name for backend in pool.eligible] == ["b1"]
    assert pool.cumulative == (1,)
    assert pick_backend(pool, _loads(0), 77) == 0
