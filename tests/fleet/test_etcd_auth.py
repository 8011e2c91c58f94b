"""The fleet's etcd client against an etcd with auth enabled: refused without credentials,
everything (put, get, txn, watch) with them, a wrong password named, an expired token renewed."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
from etcd_support import Etcd, running_etcd

from proxy.fleet.etcd import EtcdClient, EtcdError, EtcdUnavailable, Put, Unchanged

PASSWORD = "root-pass-17"


def gateway(url: str, path: str, body: Mapping[str, object], token: str = "") -> dict[str, object]:
    """One call to etcd's JSON gateway, outside the client under test."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": token} if token else {},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            result: dict[str, object] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as error:
        return {"error": error.read().decode(errors="replace")}


def enable_auth(etcd: Etcd) -> None:
    """User root (role root: etcd 3.4 wants the role to exist first), then auth on (the gateway names grant_role /v3/auth/user/grant)."""
    for path, body in (
        ("/v3/auth/role/add", {"name": "root"}),
        ("/v3/auth/user/add", {"name": "root", "password": PASSWORD}),
        ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
        ("/v3/auth/enable", {}),
    ):
        answer = gateway(etcd.url, path, body)
        assert "error" not in answer, (path, answer)


@pytest.fixture
def auth_etcd(etcd_command: str, tmp_path: Path) -> Iterator[Etcd]:
    with running_etcd(tmp_path) as member:
        enable_auth(member)
        yield member


@pytest.fixture
async def root(auth_etcd: Etcd) -> AsyncIterator[EtcdClient]:
    client = EtcdClient([auth_etcd.url], timeout=2.0, username="root", password=PASSWORD)
    yield client
    await client.close()


async def test_without_credentials_etcd_refuses(auth_etcd: Etcd, root: EtcdClient) -> None:
    await root.put("/auth/key", b"kept")
    anonymous = EtcdClient([auth_etcd.url], timeout=2.0)
    try:
        for call in (anonymous.get("/auth/key"), anonymous.put("/auth/key", b"mine")):
            with pytest.raises(EtcdError) as caught:
                await call
            # Refused, not "unreachable": retrying later would not help.
            assert not isinstance(caught.value, EtcdUnavailable)
            assert "user name is empty" in str(caught.value)
        with pytest.raises(EtcdError) as watched:
            await anext(aiter(anonymous.watch("/auth/", 1)))
        assert not isinstance(watched.value, EtcdUnavailable)
    finally:
        await anonymous.close()
    value, _ = await root.get("/auth/key") or (b"", 0)
    assert value == b"kept"


async def test_with_credentials_put_get_txn_and_watch(root: EtcdClient) -> None:
    first = await root.put("/auth/a", b"1")
    assert await root.get("/auth/a") == (b"1", first)
    applied, second = await root.txn([Unchanged("/auth/a", first)], [Put("/auth/b", b"2")])
    assert applied
    assert await root.get("/auth/b") == (b"2", second)
    stream = root.watch("/auth/", first)
    try:
        seen: list[tuple[str, int]] = []
        async with asyncio.timeout(5):
            async for events in stream:
                seen += [(event.key, event.mod_revision) for event in events]
                if len(seen) >= 2:
                    break
    finally:
        await stream.aclose()
    assert seen == [("/auth/a", first), ("/auth/b", second)]


async def test_a_wrong_password_is_a_clear_refusal(auth_etcd: Etcd) -> None:
    client = EtcdClient([auth_etcd.url], timeout=2.0, username="root", password="not-it-17")
    try:
        with pytest.raises(EtcdError) as caught:
            await client.get("/auth/a")
    finally:
        await client.close()
    assert not isinstance(caught.value, EtcdUnavailable)
    message = str(caught.value)
    assert "'root'" in message
    assert "authentication failed" in message
    assert "not-it-17" not in message
    assert "not-it-17" not in repr(client)


async def test_an_expired_token_is_renewed_once(etcd_command: str, tmp_path: Path) -> None:
    with running_etcd(tmp_path, flags=("--auth-token-ttl=1",)) as etcd:
        enable_auth(etcd)
        client = EtcdClient([etcd.url], timeout=2.0, username="root", password=PASSWORD)
        try:
            await client.put("/auth/ttl", b"before")
            # Tokens taken now expire no sooner than the client's, last used before. Each is
            # tried once: a use renews a simple token, so a token tried twice would never expire.
            login = {"name": "root", "password": PASSWORD}
            tokens = [str(gateway(etcd.url, "/v3/auth/authenticate", login)["token"])]
            tokens += [
                str(gateway(etcd.url, "/v3/auth/authenticate", login)["token"]) for _ in range(40)
            ]
            deadline = time.monotonic() + 15
            for token in tokens:
                answer = gateway(etcd.url, "/v3/kv/range", {"key": "L2F1dGgvdHRs"}, token)
                if "invalid auth token" in str(answer):
                    break
                assert time.monotonic() < deadline, "the token never expired"
                await asyncio.sleep(0.4)
            else:
                pytest.fail("no token expired")
            # The client's token is stale too: it authenticates again, and the call is done once.
            revision = await client.put("/auth/ttl", b"after")
            assert await client.get("/auth/ttl") == (b"after", revision)
        finally:
            await client.close()
