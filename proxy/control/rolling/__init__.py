"""Rolling replacement of a pool's backends, run by turnout (issue 15; groundwork so far).

Theory of operation (the plan this package grows into). A pool rollout replaces a pool's
backends a batch at a time, either in place (the addresses stay; a *hook* outside turnout
replaces the program behind each, `hooks.py`) or by surge (the new version on new addresses,
added in `maint`, health-gated, then given the old backends' traffic batch by batch, the old
ones kept for an instant rollback). Each step is decided by a pure machine (`plan.py`) from what
the controller saw (in-flight counts, hook results, health, the judge's verdict on the replaced
backends against the not-yet-replaced ones of the same pool, using per-backend attempt counts),
and written through the control plane's one write path, as route rollouts are
(proxy.control.rollout).
"""
