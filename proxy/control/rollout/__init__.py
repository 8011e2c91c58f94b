"""Rollouts: turnout runs a canary or blue-green deployment of one route itself.

Theory of operation. A rollout is a value (`model.Rollout`) kept by the control plane beside
the routing snapshot and saved with it; it changes only by *transitions* (start, next step,
pause, resume, promote, abort), and every transition goes through the control plane's one write
path as any other writer's change: one revision, published to every worker and acknowledged,
recorded in the history (actor `rollout` for the controller's own decisions), saved. The weights
or colour a transition sets and the rollout's new phase are one atomic write.

Between transitions the controller (`controller.py`, the only asynchronous part) asks the
workers for their counters a few times a second and feeds the increments to the judge
(`judge.py`, pure): a sequential, anytime-valid test that compares the new version's errors (per
upstream attempt) and slow responses with the old version's, so it may be checked after every
report without inflating false aborts. What to do next is decided by `machine.py` (pure too):
hold, step, promote, pause, or abort, each with its reason in words. The judge's running evidence
is not a revision (it moves every report); it lives in the controller, is shown in the status and
in /metrics, and starts afresh after a restart (the workers' counters do too).
"""
