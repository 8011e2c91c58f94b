"""A small asyncio client for etcd v3: exactly what the fleet needs, plain frozen values.

The client speaks etcd's JSON gateway (grpc-gateway: POST /v3/kv/range, /v3/kv/txn, /v3/watch,
/v3/lease/*, /v3/kv/compaction, /v3/maintenance/status) over aiohttp, not gRPC. Why, measured
against Debian's etcd-server 3.4.23 (the gateway at /v3/, on by default, as in 3.5 and later)
and `aetcd` 1.0.0 (PyPI, asyncio over grpcio) on Python 3.11 here:

- Both did everything the fleet needs: a txn comparing mod_revision (one of two writers with the
  same expected revision wins), watch from a revision, leases and keepalive, compaction; both
  report a watch from a compacted revision with the compact revision (gateway: the watch is
  created, then canceled with `compact_revision`; aetcd: `RevisionCompactedError`).
- Cost: the gateway needs nothing new (aiohttp is already the project's); aetcd brings grpcio
  (19 MB of native code) and protobuf, whose generated-code compatibility must then be kept in
  step. gRPC in a process that forks its workers needs grpcio's fork handling and runs its own
  I/O threads beside uvloop; an aiohttp session needs neither.
- Maintenance: the gateway is etcd's own documented API, served by etcd itself; aetcd is one
  person's project whose 1.0 came after years of alphas.
- What the gateway costs us: keys and values travel base64-encoded, int64s as strings, proto3
  leaves out zero values (a failed txn has no "succeeded"), and the keepalive stream is used one
  POST per refresh. All of that stays in this module.

Security: `ssl` (an SSLContext: CA, client certificate) for https endpoints; etcd's users
(proxy.fleet.etcd_auth): a token on every call, watches included, replaced once when etcd
refuses it as stale (that one call asked again: nothing else is ever retried here).

Errors: anything that means "etcd cannot be reached or answer now" (refused connection, reset,
timeout, 503, gRPC Unavailable/DeadlineExceeded) is `EtcdUnavailable`; a revision compacted
away is `Compacted`; anything else etcd refuses is `EtcdError`. A call that fails moves the client
to the next endpoint for the next call; it is never retried here (a write may have been applied).
"""

from __future__ import annotations

import asyncio
import base64
import ssl as tls
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import orjson

from proxy.fleet.etcd_auth import TokenAuth

# gRPC status codes etcd's gateway reports in {"code": ...} (google.golang.org/grpc/codes).
_CANCELED = 1
_DEADLINE_EXCEEDED = 4
_UNAVAILABLE = 14
# What etcd says while it stops, starts or elects (etcd 3.4's gateway, seen in tests): the
# request never ran or its outcome is unknown, as with an unreachable etcd.
_TRANSIENT = ("connection is closing", "request timed out", "leader changed", "no leader")


class EtcdError(Exception):
    """etcd answered, and refused the request."""


class EtcdUnavailable(EtcdError):
    """etcd could not be reached, or did not answer in time."""


class Compacted(EtcdError):
    """The revision asked for was compacted away. `compact_revision` is the oldest revision
    still kept when etcd says so (a watch does; a range or a compaction does not: None)."""

    def __init__(self, compact_revision: int | None) -> None:
        super().__init__(f"revision compacted (oldest kept: {compact_revision})")
        self.compact_revision = compact_revision


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One change seen by a watch: a put (value set) or a delete (value empty)."""

    kind: Literal["put", "delete"]
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A txn's condition: the key's mod_revision is still `mod_revision` (0: it does not exist)."""

    key: str
    mod_revision: int


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""


def _why(error: Exception) -> str:
    """A short reason (aiohttp's reprs name every field of the connection key)."""
    return str(error) or type(error).__name__


def _prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix` (etcd's clientv3.GetPrefixRangeEnd)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return _b64(bytes(raw))
        raw.pop()
    return _b64(b"\0")  # every key


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(item["key"]).decode(),
        value=_unb64(item.get("value", "")),
        mod_revision=int(item.get("mod_revision", 0)),
        lease=int(item.get("lease", 0)),
    )


def _op(op: Put | Delete) -> dict[str, Any]:
    if isinstance(op, Put):
        return {"request_put": {"key": _b64(op.key), "value": _b64(op.value), "lease": op.lease}}
    return {"request_delete_range": {"key": _b64(op.key)}}


def _refusal(body: dict[str, Any], status: int) -> EtcdError:
    message = str(body.get("message") or body.get("error") or f"HTTP {status}")
    code = body.get("code")
    if (
        status in (408, 503, 504)
        or code in (_CANCELED, _UNAVAILABLE, _DEADLINE_EXCEEDED)
        or any(words in message for words in _TRANSIENT)
    ):
        return EtcdUnavailable(message)
    if "compacted" in message:
        return Compacted(None)
    return EtcdError(message)


class EtcdClient:
    """An etcd v3 client over its JSON gateway. `endpoints`: base URLs (http://127.0.0.1:2379);
    `timeout`: the bound on every call but a watch's stream, in seconds; `ssl`: the TLS
    context for https endpoints (None: the system's CAs, no client certificate);
    `username`/`password`: etcd's auth (both or neither). Create it, then `close()` it,
    inside one running event loop."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 5.0,
        ssl: tls.SSLContext | None = None,
        username: str = "",
        password: str = "",
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint")
        self._auth = TokenAuth(username, password) if username or password else None
        self._endpoints = [endpoint.rstrip("/") for endpoint in endpoints]
        self._current = 0
        self._timeout = timeout
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the password, nor the token
        return f"EtcdClient({self._endpoints!r}, auth={self._auth!r})"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True),
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return self._session

    async def _headers(self) -> dict[str, str]:
        """The Authorization header of the next call, authenticating first when needed."""
        if self._auth is None:
            return {}
        try:
            return await self._auth.headers(self._authenticate)
        except EtcdUnavailable:
            raise
        except EtcdError as error:
            raise EtcdError(f"etcd refused user {self._auth.username!r}: {error}") from error

    async def _authenticate(self, credentials: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/v3/auth/authenticate", credentials, {})

    def _stale(self, error: EtcdError, headers: dict[str, str]) -> bool:
        """Whether etcd refused the token sent in `headers` (then forgotten: ask again)."""
        auth, unavailable = self._auth, isinstance(error, EtcdUnavailable)
        return auth is not None and not unavailable and auth.refused(str(error), headers)

    def _failed(self) -> None:
        self._current = (self._current + 1) % len(self._endpoints)

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = await self._headers()
        try:
            return await self._post(path, body, headers)
        except EtcdError as error:
            if not self._stale(error, headers):
                raise
        return await self._post(path, body, await self._headers())

    async def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        url = self._endpoints[self._current] + path
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http().post(url, json=body, headers=headers) as response:
                    answer: dict[str, Any] = orjson.loads(await response.read() or b"{}")
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
            self._failed()
            raise EtcdUnavailable(f"etcd at {url}: {_why(error)}") from error
        if response.status != 200 or "error" in answer:
            refusal = _refusal(answer, response.status)
            if isinstance(refusal, EtcdUnavailable):
                self._failed()
            raise refusal
        return answer

    async def get(self, key: str) -> tuple[bytes, int] | None:
        """The key's value and mod_revision, or None when it does not exist."""
        answer = await self._call("/v3/kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs", [])
        if not kvs:
            return None
        item = _kv(kvs[0])
        return item.value, item.mod_revision

    async def get_prefix(
        self, prefix: str, revision: int | None = None
    ) -> tuple[tuple[KeyValue, ...], int]:
        """Every key under `prefix`, sorted by key, as of one revision (`revision`, or the latest),
        and that revision: one consistent snapshot. Raises Compacted for a compacted revision."""
        body: dict[str, Any] = {"key": _b64(prefix), "range_end": _prefix_end(prefix)}
        if revision is not None:
            body["revision"] = revision
        answer = await self._call("/v3/kv/range", body)
        items = tuple(_kv(item) for item in answer.get("kvs", []))
        return items, revision or int(answer["header"]["revision"])

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Set the key (bound to `lease` when not 0); the revision of the write."""
        body = {"key": _b64(key), "value": _b64(value), "lease": lease}
        answer = await self._call("/v3/kv/put", body)
        return int(answer["header"]["revision"])

    async def delete(self, key: str) -> int:
        """Remove the key if it exists; the store's revision after it."""
        answer = await self._call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(answer["header"]["revision"])

    async def txn(
        self, conditions: Sequence[Unchanged], ops: Sequence[Put | Delete]
    ) -> tuple[bool, int]:
        """Apply every op in one revision if every condition holds, else nothing: (whether it
        applied, the store's revision then, which is the write's own when it applied)."""
        body = {
            "compare": [
                {
                    "key": _b64(condition.key),
                    "target": "MOD",
                    "result": "EQUAL",
                    "mod_revision": condition.mod_revision,
                }
                for condition in conditions
            ],
            "success": [_op(op) for op in ops],
        }
        answer = await self._call("/v3/kv/txn", body)
        return bool(answer.get("succeeded", False)), int(answer["header"]["revision"])

    async def put_if(
        self, key: str, value: bytes, expected_mod_revision: int, *, lease: int = 0
    ) -> bool:
        """Set the key only if its mod_revision is still `expected_mod_revision` (0: only if
        it does not exist); whether it was set."""
        applied, _ = await self.txn(
            [Unchanged(key, expected_mod_revision)], [Put(key, value, lease)]
        )
        return applied

    async def compact(self, revision: int) -> None:
        """Forget every revision before `revision` (as etcd's auto-compaction does).
        Raises Compacted when it was compacted already."""
        await self._call("/v3/kv/compaction", {"revision": revision})

    async def revision(self) -> int:
        """The store's current revision (etcd's maintenance status: a cheap liveness probe)."""
        answer = await self._call("/v3/maintenance/status", {})
        return int(answer["header"]["revision"])

    async def lease_grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; its id."""
        answer = await self._call("/v3/lease/grant", {"TTL": ttl})
        return int(answer["ID"])

    async def lease_keepalive(self, lease: int) -> int:
        """Renew the lease; the seconds it now has, 0 when it expired (its keys are gone)."""
        answer = await self._call("/v3/lease/keepalive", {"ID": lease})
        return int(answer.get("result", {}).get("TTL", 0))

    async def lease_revoke(self, lease: int) -> None:
        """End the lease now, deleting its keys (a clean shutdown's goodbye)."""
        await self._call("/v3/lease/revoke", {"ID": lease})

    async def watch(
        self, prefix: str, start_revision: int
    ) -> AsyncGenerator[tuple[Event, ...], None]:
        """Every change under `prefix` from `start_revision` on, in revision order, as the
        batches etcd sends: a batch never splits a revision, so a multi-key txn is applied
        whole. Raises Compacted when `start_revision` was compacted, and EtcdUnavailable when
        the stream cannot start or ends (etcd stopped): watch again from the next revision."""
        headers = await self._headers()
        started = False
        try:
            async for events in self._stream(prefix, start_revision, headers):
                started = True
                yield events
        except EtcdError as error:
            # Only a watch refused before its first event is asked again: nothing was skipped.
            if started or not self._stale(error, headers):
                raise
        async for events in self._stream(prefix, start_revision, await self._headers()):
            yield events

    async def _stream(
        self, prefix: str, start_revision: int, headers: dict[str, str]
    ) -> AsyncGenerator[tuple[Event, ...], None]:
        url = self._endpoints[self._current] + "/v3/watch"
        create = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _prefix_end(prefix),
                "start_revision": start_revision,
            }
        }
        # No total deadline: a watch lasts as long as its consumer wants it.
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout)
        try:
            post = self._http().post(url, json=create, headers=headers, timeout=timeout)
            async with post as response:
                if response.status != 200:
                    raise _refusal(orjson.loads(await response.read() or b"{}"), response.status)
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            events = _watch_message(orjson.loads(line))
                            if events:
                                yield events
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
            self._failed()
            raise EtcdUnavailable(f"etcd watch at {url}: {_why(error)}") from error
        self._failed()
        raise EtcdUnavailable(f"etcd watch at {url} ended")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _watch_message(message: dict[str, Any]) -> tuple[Event, ...]:
    if "error" in message:
        error = message["error"]
        raise _refusal(error if isinstance(error, dict) else {"message": error}, 200)
    result = message.get("result", {})
    if result.get("canceled"):
        compact_revision = int(result.get("compact_revision", 0))
        if compact_revision:
            raise Compacted(compact_revision)
        raise EtcdError(f"watch canceled: {result.get('cancel_reason', 'no reason given')}")
    return tuple(
        Event(
            kind="delete" if event.get("type") == "DELETE" else "put",
            key=_unb64(event["kv"]["key"]).decode(),
            value=_unb64(event["kv"].get("value", "")),
            mod_revision=int(event["kv"].get("mod_revision", 0)),
        )
        for event in result.get("events", [])
    )
