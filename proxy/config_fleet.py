"""[state.etcd]: where a fleet of instances shares its state (issue 17), and how to reach it.

Theory of operation: this section only describes the connection; `[state] backend = "etcd"`
turns fleet mode on (proxy.config_sections.StateConfig), and `proxy.fleet.connect.client_from`
turns this section into an EtcdClient. Every option is checked here, naming the field, so an
instance never starts against an etcd it cannot talk to for a reason visible in the file:
endpoints are http:// or https:// base URLs, the prefix is a directory ("/.../"), and credentials
and client certificates come in pairs. The section is checked even with backend = "file" (a
misspelt option is an error wherever it is).

The password is a SecretStr: it never appears in a repr, a log line or an error message; give
it as TURNOUT_STATE__ETCD__PASSWORD rather than in the file. An empty file option ("") is None,
as the example file shows the options: "" = not set.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from proxy.config_types import Seconds, Section

# Becomes part of etcd keys (P/members/{instance}) and of problem+json details: no "/".
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")


class EtcdConfig(Section):
    """The etcd a fleet shares its state through ([state.etcd])."""

    endpoints: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:2379"])
    """Client URLs of etcd's members (at least one); a failed call moves to the next."""
    prefix: str = "/turnout/default/"
    """Every key of this fleet lives under it; fleets sharing one etcd use different ones."""
    instance: str = ""
    """This instance's name in the fleet; "" = "<hostname>-<admin port>"."""
    timeout: Seconds = 2.0
    """The bound on each etcd call."""
    wait: Seconds = 5.0
    """How long an admin write waits for every live instance to apply it (then 504)."""
    ttl: int = Field(5, ge=2, le=60)
    """Seconds of the membership lease: an instance gone this long leaves the fleet."""
    # Declared in pairs, the second after the first: its check reads the first (pydantic
    # validates in this order), so the error names the field of the pair that is left out.
    username: str = ""
    password: SecretStr = Field(SecretStr(""), validate_default=True)
    """Better given as TURNOUT_STATE__ETCD__PASSWORD; never logged."""
    ca_file: Path | None = None
    """CA bundle verifying etcd's certificate (https endpoints); default: the system's."""
    cert_file: Path | None = None
    key_file: Path | None = Field(None, validate_default=True)
    last_known_good: Path | None = None
    """The local copy served while etcd is unreachable; default: "<stem>.fleet.json" next to
    the configuration file."""

    @field_validator("ca_file", "cert_file", "key_file", "last_known_good", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one etcd endpoint")
        for endpoint in value:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{endpoint!r} is not an http:// or https:// URL")
            if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
                raise ValueError(f"{endpoint!r}: give scheme://host:port only")
            try:
                _ = parts.port
            except ValueError as error:
                raise ValueError(f"{endpoint!r}: {error}") from error
        return value

    @field_validator("prefix")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")) or len(value) < 2:
            raise ValueError('must start and end with "/" (e.g. "/turnout/default/")')
        return value

    @field_validator("instance")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not _INSTANCE.match(value):
            raise ValueError("letters, digits and _.@:- only (at most 128), or empty")
        return value

    @field_validator("password")
    @classmethod
    def _with_username(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Absent `username` means it was given but is invalid: that is its error, not this one.
        if "username" in info.data and bool(info.data["username"]) != bool(
            value.get_secret_value()
        ):
            raise ValueError("give both username and password, or neither")
        return value

    @field_validator("key_file")
    @classmethod
    def _with_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if "cert_file" in info.data and (info.data["cert_file"] is None) != (value is None):
            raise ValueError("give both cert_file and key_file, or neither")
        return value

    def plain_password(self) -> str:
        """The password itself, for the one place that sends it to etcd."""
        return self.password.get_secret_value()
