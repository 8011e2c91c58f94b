"""turnout's admin HTTP API and its command-line client.

Theory of operation. This package is an adapter over the control plane's public service
(proxy.control.ControlService): a handler parses and validates HTTP, calls one command or query,
and renders the plain value it gets back (views.py); a refusal becomes an RFC 9457 problem
(problems.py). What may live here: HTTP (routing table, auth, OpenAPI, metrics exposition), the
wire models (models.py), the client and the CLI (client.py, cli/). What may not: any rule about
routing state (those are pure functions in router/, enforced by the service), and any reach into
the control plane's parts: admin_api imports neither proxy.supervisor, proxy.health,
proxy.telemetry nor proxy.config (tests/admin/test_adapter_imports.py proves it).
"""
