"""The fleet: several turnout instances sharing one state through etcd (issue 17).

Theory of operation (the rules the fleet's modules keep):

- etcd holds what the admin API writes (routes' weights and colours, backends' admin states,
  added and removed backends, rollouts, history, the revision); health stays per instance.
- Every write is one etcd transaction comparing the mod_revision of the keys it read, so
  If-Match and "no lost update" hold across the fleet, and the fleet's revision is the state's.
- An instance watches from the revision it last applied + 1, never skipping ahead; when that
  revision was compacted (`etcd.Compacted`) it reads a consistent snapshot at one revision
  (`EtcdClient.get_prefix`) and applies only the difference.
- Each live instance publishes the revision it applied under a lease; a write answers when every
  live instance applied it.
- etcd down (`etcd.EtcdUnavailable`): instances keep serving their last state, writes answer 503.

What lives here: the etcd client facade (`etcd`: plain frozen values in and out, one exception
for "etcd cannot be reached"; TLS, and etcd's users through `etcd_auth`); building it and this
instance's name from [state.etcd] (`connect`); the key names and the shared state's document
(`layout`, pure);
reads, guarded writes and the local last-known-good copy (`store`); following the state in
order (`watcher`); live instances and the revision each applied (`members`); rollout
leadership under an instance's lease (`leader`); every instance's rollout counts (`counts`,
`counts_sum`); and `link`, what the control plane holds in fleet mode (its use of all the above
is proxy/control/fleet_sync.py and fleet_counts.py). What does not live here: routing decisions
(router/), HTTP (admin_api/).
"""
