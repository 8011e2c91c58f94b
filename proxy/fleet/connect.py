"""From [state.etcd] to a connected fleet: the etcd client and this instance's name.

Theory of operation: the configuration (proxy.config_fleet.EtcdConfig) was checked when it
loaded; this module only turns it into objects. `client_from` builds the TLS context once
(ca_file verifies etcd's certificate, else the system's CAs; cert_file and key_file are this
instance's client certificate) and hands the password, a SecretStr until here, to the client,
which never shows it. `instance_name` is the configured name, or "<hostname>-<admin port>":
unique per host and port, stable across restarts, so a restarted instance takes its own
place in the fleet again.
"""

from __future__ import annotations

import socket
import ssl

from proxy.config_fleet import EtcdConfig
from proxy.fleet.etcd import EtcdClient


def tls_context(cfg: EtcdConfig) -> ssl.SSLContext | None:
    """The TLS context the options ask for; None when they set none (https endpoints then
    use aiohttp's default: the system's CAs)."""
    if cfg.ca_file is None and cfg.cert_file is None:
        return None
    context = ssl.create_default_context(
        cafile=str(cfg.ca_file) if cfg.ca_file is not None else None
    )
    if cfg.cert_file is not None:
        assert cfg.key_file is not None  # checked with the configuration: both or neither
        context.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    return context


def client_from(cfg: EtcdConfig) -> EtcdClient:
    """An EtcdClient for [state.etcd]. Reads the certificate files now: a missing or invalid
    one raises OSError or ssl.SSLError here, at start, not at the first call."""
    return EtcdClient(
        cfg.endpoints,
        timeout=cfg.timeout,
        ssl=tls_context(cfg),
        username=cfg.username,
        password=cfg.plain_password(),
    )


def instance_name(cfg: EtcdConfig, admin_port: int) -> str:
    """This instance's name in the fleet: `instance`, or "<hostname>-<admin port>"."""
    return cfg.instance or f"{socket.gethostname()}-{admin_port}"
