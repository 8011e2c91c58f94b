"""The fleet's layout in etcd: key names, and the shared state's document (pure, synchronous)."""

from __future__ import annotations

import orjson
import pytest
from states import change, state

from proxy.fleet.layout import (
    BadDocument,
    Keys,
    decode,
    decode_change,
    encode,
    encode_change,
    history_revision,
)


def test_key_names_under_a_prefix_with_or_without_its_slash() -> None:
    for prefix in ("/turnout/prod/", "/turnout/prod"):
        keys = Keys(prefix)
        assert keys.state == "/turnout/prod/state"
        assert keys.history_entry(42) == "/turnout/prod/history/000000000042"
        assert keys.member("i-1") == "/turnout/prod/members/i-1"
        assert keys.leader == "/turnout/prod/leader/rollouts"
        assert keys.count("i-1") == "/turnout/prod/counts/i-1"


def test_history_keys_sort_as_their_revisions_and_read_back() -> None:
    keys = Keys("/p/")
    revisions = [1, 9, 10, 99, 100, 123_456]
    assert sorted(keys.history_entry(r) for r in revisions) == [
        keys.history_entry(r) for r in revisions
    ]
    assert [history_revision(keys.history_entry(r), keys) for r in revisions] == revisions
    with pytest.raises(BadDocument, match="not a history entry"):
        history_revision("/p/state", keys)


def test_a_state_round_trips_through_the_documented_json_shape() -> None:
    shared = state(7)
    raw = encode(shared)
    document = orjson.loads(raw)
    assert list(document) == ["format", "revision", "fileSpec", "spec", "rollouts", "poolRollouts"]
    assert (document["format"], document["revision"]) == (1, 7)
    assert decode(raw) == shared
    assert decode_change(encode_change(change(7))) == change(7)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"{not json", "Invalid JSON"),
        (b"[]", "document: Input should be an object"),
        (orjson.dumps({"format": 2}), "format: Input should be 1"),
    ],
)
def test_a_bad_document_is_refused_naming_what_is_wrong(raw: bytes, named: str) -> None:
    with pytest.raises(BadDocument, match=named):
        decode(raw)


def test_a_bad_field_deep_in_the_spec_is_named_by_its_path() -> None:
    document = orjson.loads(encode(state(3)))
    document["spec"]["routes"][0]["weights"] = "heavy"
    with pytest.raises(BadDocument) as raised:
        decode(orjson.dumps(document))
    assert "spec.routes.0.weights" in str(raised.value)
    with pytest.raises(BadDocument, match="revision"):
        decode_change(b'{"revision": "x"}')
