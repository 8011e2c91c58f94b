"""Fixtures of the fleet's tests: a real etcd, shared by a module's tests (starting one takes
about a second), or a test's own when the test stops and restarts it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from etcd_support import ETCD, NO_ETCD, Etcd, running_etcd

from proxy.fleet.etcd import EtcdClient


@pytest.fixture(scope="session")
def etcd_command() -> str:
    if ETCD is None:
        pytest.skip(NO_ETCD)
    return ETCD


@pytest.fixture(scope="module")
def etcd(etcd_command: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """One etcd for the module's tests: each test keeps to its own keys (`prefix`)."""
    with running_etcd(tmp_path_factory.mktemp("etcd")) as member:
        yield member


@pytest.fixture
def own_etcd(etcd_command: str, tmp_path: Path) -> Iterator[Etcd]:
    """An etcd for this test alone: one it may stop and start again."""
    with running_etcd(tmp_path) as member:
        yield member


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"/turnout-test/{request.node.name}/"


@pytest.fixture
async def client(etcd: Etcd) -> AsyncIterator[EtcdClient]:
    etcd_client = EtcdClient([etcd.url], timeout=2.0)
    yield etcd_client
    await etcd_client.close()
