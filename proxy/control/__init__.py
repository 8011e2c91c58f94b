"""The control plane: one per instance, the owner of the routing state.

What lives here: the service every writer and reader calls (`service.ControlService`: commands,
with the queries of `queries`, over the plain values of `values`, every rule enforced), the plane that owns the state and its one
write path (`plane.ControlPlane`: precondition, pure edit, publish, ack, record, save), the
history's pure functions (`history`), the service's values and errors. What does not: HTTP (the
admin API is an adapter over the service, in admin_api/), rules that need no I/O (router/).
"""

from __future__ import annotations

from proxy.control.errors import (
    BackendInService,
    InvalidConfig,
    NoEligibleBackend,
    NotFound,
    PreconditionFailed,
    RevisionUnavailable,
)
from proxy.control.plane import RESTART_ONLY, ControlPlane, Phase
from proxy.control.service import ControlService

__all__ = [
    "RESTART_ONLY",
    "BackendInService",
    "ControlPlane",
    "ControlService",
    "InvalidConfig",
    "NoEligibleBackend",
    "NotFound",
    "Phase",
    "PreconditionFailed",
    "RevisionUnavailable",
]
