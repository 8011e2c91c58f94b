"""turnout's runtime: the processes, the data plane, the control plane and the command line.

Theory of operation. One instance is one control-plane process (proxy/instance.py assembles it:
configuration, control plane, supervisor, admin app) and N worker processes (proxy/worker.py),
each running one data plane (proxy/server.py, dataplane.py and the protocol modules: downstream,
exchange, upstream, tunnel). The control plane (proxy/control/) owns the routing state; every
write reaches every worker as one published snapshot before it is acknowledged.

What may live here: I/O and process life. Decisions that need no I/O (routing, picking, guards,
failover, edits) live in router/ and are called from here; HTTP for operators lives in
admin_api/. Import rules (tests/proxy/test_imports.py): a worker imports neither aiohttp nor
admin_api; importing this package imports nothing, since entry points (cli.py, worker.py,
instance.py) choose the compiled build or the sources (native.py) before they import the router
or the data plane.
"""
