"""One leader per job in the fleet (rollouts run on one instance at a time).

Theory of operation:

- The leader of job `name` is whoever holds `P/leader/{name}`: the instance's id, put under the
  instance's membership lease. Campaigning is one txn that puts the key only if it does not
  exist (`put_if(key, instance, 0)`), so of any number of instances exactly one wins.
- The key lives and dies with the holder's lease: a leader that crashes or loses etcd for
  longer than its TTL loses the key, and `resign()` deletes it at once (only if it is still
  ours: a txn on the mod_revision we wrote, so a late resign cannot delete a successor's key).
- Everyone, leader included, then watches the key from the revision of its campaign + 1 (no
  change between the campaign and the watch is missed). A delete means the seat is free:
  campaign again. The leader watches too, because its own lease may have expired (the
  membership then grants a new lease, and the key went with the old one).
- `is_leader` turns False the moment the watch breaks (etcd unreachable): a leader that cannot
  see the key cannot know whether it still holds it, and a rollout step must write through
  etcd anyway. On return, a campaign that finds our own id in the key takes the seat back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from proxy.fleet.etcd import Delete, EtcdClient, EtcdError, Put, Unchanged

# How long to wait before campaigning again when etcd failed or there is no lease yet.
_RETRY = 0.2


class Leadership:
    """Campaign for `P/leader/{name}` as `instance` under the lease `lease_of()` returns
    (the instance's membership lease; 0 while there is none)."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        name: str,
        instance: str,
        lease_of: Callable[[], int],
    ) -> None:
        self._client = client
        self._key = f"{prefix}leader/{name}"
        self._instance = instance.encode()
        self._lease_of = lease_of
        self._held_at = 0  # the mod_revision of the key we hold, 0 when we do not lead
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self._held_at != 0

    def start(self) -> None:
        """Campaign in the background, and again whenever the seat falls free, until resign()."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"campaign {self._key}")

    async def resign(self) -> None:
        """Stop campaigning and, if leading, hand the seat over now (best effort: when etcd
        cannot be reached the key ends with the lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        held_at, self._held_at = self._held_at, 0
        if held_at:
            with contextlib.suppress(EtcdError):
                await self._client.txn([Unchanged(self._key, held_at)], [Delete(self._key)])

    async def _run(self) -> None:
        while True:
            try:
                await self._campaign()
            except EtcdError:
                self._held_at = 0
                await asyncio.sleep(_RETRY)

    async def _campaign(self) -> None:
        """Campaign once, then follow the key until it is deleted."""
        lease = self._lease_of()
        if not lease:
            # Never without a lease: the key would outlive a crashed leader.
            self._held_at = 0
            await asyncio.sleep(_RETRY)
            return
        won, revision = await self._client.txn(
            [Unchanged(self._key, 0)], [Put(self._key, self._instance, lease)]
        )
        self._held_at = revision if won else 0
        if not won:
            current = await self._client.get(self._key)
            if current is None:
                return  # freed since our txn: campaign again
            value, mod_revision = current
            # Ours from before a broken watch: the seat is still ours.
            self._held_at = mod_revision if value == self._instance else 0
        async for events in self._client.watch(self._key, revision + 1):
            for event in events:
                if event.key != self._key:
                    continue  # the watch is a prefix: P/leader/{name}-other is not ours
                if event.kind == "delete":
                    self._held_at = 0
                    return
                self._held_at = event.mod_revision if event.value == self._instance else 0
