"""The fleet's etcd client against an etcd serving TLS and asking for client certificates
(--client-cert-auth): the client built from [state.etcd] (ca_file, cert_file, key_file)
works, one without the client certificate or without the CA is refused."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from etcd_support import Etcd, running_etcd

from proxy.config_fleet import EtcdConfig
from proxy.fleet.connect import client_from
from proxy.fleet.etcd import EtcdClient, EtcdUnavailable

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]


def _openssl(directory: Path, *args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=directory, check=True, capture_output=True, timeout=30)


def _issue(directory: Path, name: str, extensions: str) -> tuple[Path, Path]:
    """A certificate signed by the CA in `directory`, with a fresh P-256 key."""
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        directory, "req", *curve, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        directory,
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
    )  # fmt: skip
    return directory / f"{name}.pem", directory / f"{name}-key.pem"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    if OPENSSL is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    directory = tmp_path / "pki"
    directory.mkdir()
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        directory, "req", "-x509", *curve, "-keyout", "ca-key.pem", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=turnout-test-ca",
    )  # fmt: skip
    # etcd 3.4's JSON gateway dials etcd's own gRPC port with the server's certificate as its
    # client certificate: without clientAuth every gateway call answers "connection closed".
    return Pki(
        ca=directory / "ca.pem",
        server=_issue(
            directory,
            "etcd",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
        client=_issue(directory, "turnout", "extendedKeyUsage=clientAuth\n"),
    )


@pytest.fixture
def tls_etcd(etcd_command: str, tmp_path: Path, pki: Pki) -> Iterator[Etcd]:
    probe = ssl.create_default_context(cafile=str(pki.ca))
    probe.load_cert_chain(*map(str, pki.client))
    flags = (
        f"--cert-file={pki.server[0]}",
        f"--key-file={pki.server[1]}",
        "--client-cert-auth",
        f"--trusted-ca-file={pki.ca}",
    )
    with running_etcd(tmp_path, flags=flags, scheme="https", probe_tls=probe) as member:
        yield member


async def test_a_client_with_the_ca_and_its_certificate_works(tls_etcd: Etcd, pki: Pki) -> None:
    assert tls_etcd.url.startswith("https://")
    cfg = EtcdConfig(
        endpoints=[tls_etcd.url], ca_file=pki.ca, cert_file=pki.client[0], key_file=pki.client[1]
    )
    client = client_from(cfg)
    try:
        revision = await client.put("/tls/key", b"over tls")
        assert await client.get("/tls/key") == (b"over tls", revision)
    finally:
        await client.close()


async def test_a_client_without_its_certificate_is_refused(tls_etcd: Etcd, pki: Pki) -> None:
    without_cert = client_from(EtcdConfig(endpoints=[tls_etcd.url], ca_file=pki.ca))
    try:
        with pytest.raises(EtcdUnavailable) as caught:
            await without_cert.put("/tls/refused", b"never")
    finally:
        await without_cert.close()
    # TLS 1.3: the refusal may come after the handshake, as a closed connection (the message
    # then does not say why); it is a refusal, not an outage: the same etcd answers the next
    # client, and nothing was written.
    assert tls_etcd.url in str(caught.value)
    cfg = EtcdConfig(
        endpoints=[tls_etcd.url], ca_file=pki.ca, cert_file=pki.client[0], key_file=pki.client[1]
    )
    client = client_from(cfg)
    try:
        assert await client.get("/tls/refused") is None
    finally:
        await client.close()


async def test_a_client_that_does_not_trust_etcds_ca_is_refused(tls_etcd: Etcd, pki: Pki) -> None:
    # The system's CAs do not know the test CA: etcd's certificate is not trusted.
    untrusting = EtcdClient([tls_etcd.url], timeout=2.0)
    try:
        with pytest.raises(EtcdUnavailable) as caught:
            await untrusting.revision()
    finally:
        await untrusting.close()
    assert "certificate verify failed" in str(caught.value)
