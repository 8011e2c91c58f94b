"""The control plane's use of the health checker, done only when the pools or settings change.

The health checker follows the spec's pools (`initial` and `reconcile` walk every backend of
every pool: on 2,000 backends a few milliseconds each). Most writes change a route, a backend's
state or the health view itself, which leave the pools' definitions and the settings as they
were; then what the checker follows is unchanged and walking it again only costs time, so this
asks for the current view instead. Untouched pools are the same objects from one spec to the
next (edits use `dataclasses.replace`), so telling costs an identity check per pool.
"""

from __future__ import annotations

from proxy.config import Settings
from proxy.health import HealthChecker, Key
from router import Health, PoolSpec, Spec


class HealthFollower:
    """Tells the health checker about a spec only when what it follows changed."""

    def __init__(self, checker: HealthChecker) -> None:
        self.checker = checker
        self._followed: Followed | None = None
        """The pools and settings the checker's view was last computed for."""
        self._probing: Followed | None = None
        """The pools and settings the checker last probed."""

    def view(self, spec: Spec, settings: Settings) -> dict[Key, Health]:
        """The health view for `spec`: a backend added at runtime in its initial state."""
        if _same(self._followed, spec, settings):
            return self.checker.health()
        self._followed = (spec.pools, settings)
        return self.checker.initial(spec, settings)

    def reconcile(self, spec: Spec, settings: Settings, *, always: bool = False) -> None:
        """Probe the backends of `spec`'s pools (new ones too, no longer removed ones)."""
        if always or not _same(self._probing, spec, settings):
            self._followed = (spec.pools, settings)
            self._probing = (spec.pools, settings)
            self.checker.reconcile(spec, settings)


Followed = tuple[tuple[PoolSpec, ...], Settings]


def _same(followed: Followed | None, spec: Spec, settings: Settings) -> bool:
    return followed is not None and followed[1] is settings and followed[0] == spec.pools
