"""[state] backend and [state.etcd]: fleet mode's options, checked naming the field, the
password never shown, the environment reaching every option (issue 17)."""

from __future__ import annotations

import pickle
import re
import socket
import subprocess
from pathlib import Path

import pytest

from helpers import TURNOUT
from proxy.config import ConfigError, load_config
from proxy.config_fleet import EtcdConfig
from proxy.fleet.connect import client_from, instance_name

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[pools.stable]
backends = [{ name = "s1", url = "http://127.0.0.1:9001" }]
[routes.web]
weights = { stable = 100 }
"""

FULL = """
[state]
backend = "etcd"
[state.etcd]
endpoints = ["https://etcd-1.example:2379", "https://etcd-2.example:2379"]
prefix = "/turnout/shop/"
instance = "edge-a"
timeout = 1.5
wait = 8
ttl = 10
username = "turnout"
password = "s3cret-pass"
ca_file = "/etc/turnout/etcd-ca.pem"
cert_file = "/etc/turnout/client.pem"
key_file = "/etc/turnout/client-key.pem"
last_known_good = "/var/lib/turnout/fleet.json"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turnout.toml"
    path.write_text(text)
    return path


def test_the_default_is_the_state_file(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL))
    assert settings.state.backend == "file"
    etcd = settings.state.etcd
    assert (etcd.endpoints, etcd.prefix, etcd.instance) == (
        ["http://127.0.0.1:2379"],
        "/turnout/default/",
        "",
    )
    assert (etcd.timeout, etcd.wait, etcd.ttl) == (2.0, 5.0, 5)
    assert (etcd.username, etcd.plain_password()) == ("", "")
    assert (etcd.ca_file, etcd.cert_file, etcd.key_file, etcd.last_known_good) == (None,) * 4


def test_every_option_is_read(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    assert settings.state.backend == "etcd"
    etcd = settings.state.etcd
    assert etcd.endpoints == ["https://etcd-1.example:2379", "https://etcd-2.example:2379"]
    assert (etcd.prefix, etcd.instance) == ("/turnout/shop/", "edge-a")
    assert (etcd.timeout, etcd.wait, etcd.ttl) == (1.5, 8.0, 10)
    assert (etcd.username, etcd.plain_password()) == ("turnout", "s3cret-pass")
    assert etcd.ca_file == Path("/etc/turnout/etcd-ca.pem")
    assert (etcd.cert_file, etcd.key_file) == (
        Path("/etc/turnout/client.pem"),
        Path("/etc/turnout/client-key.pem"),
    )
    assert etcd.last_known_good == Path("/var/lib/turnout/fleet.json")
    # Worker processes receive the settings pickled.
    assert pickle.loads(pickle.dumps(settings)).state.etcd.plain_password() == "s3cret-pass"


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    for text in (repr(settings), str(settings), repr(settings.state.etcd)):
        assert "s3cret-pass" not in text
    # Nor in an error about the section.
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + FULL.replace("ttl = 10", "ttl = 0")))
    assert "s3cret-pass" not in str(caught.value)


def test_the_environment_reaches_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_STATE__BACKEND", "etcd")
    monkeypatch.setenv("TURNOUT_STATE__ETCD__USERNAME", "turnout")
    monkeypatch.setenv("TURNOUT_STATE__ETCD__PASSWORD", "from-the-environment")
    monkeypatch.setenv("TURNOUT_STATE__ETCD__TTL", "7")
    settings, _ = load_config(write(tmp_path, MINIMAL))
    etcd = settings.state.etcd
    assert settings.state.backend == "etcd"
    assert (etcd.username, etcd.plain_password(), etcd.ttl) == (
        "turnout",
        "from-the-environment",
        7,
    )
    # Over the file's value too.
    settings, _ = load_config(write(tmp_path, MINIMAL + FULL))
    assert settings.state.etcd.plain_password() == "from-the-environment"


ETCD = "state.etcd"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("endpoints = []", f"{ETCD}.endpoints"),
        ("endpoints = ['127.0.0.1:2379']", f"{ETCD}.endpoints"),
        ("endpoints = ['unix:///run/etcd.sock']", f"{ETCD}.endpoints"),
        ("endpoints = ['http://127.0.0.1:2379/v3']", f"{ETCD}.endpoints"),
        ("endpoints = ['http://127.0.0.1:99999']", f"{ETCD}.endpoints"),
        ("endpoints = ['http://']", f"{ETCD}.endpoints"),
        ("prefix = 'turnout/'", f"{ETCD}.prefix"),
        ("prefix = '/turnout'", f"{ETCD}.prefix"),
        ("prefix = '/'", f"{ETCD}.prefix"),
        ("instance = 'a/b'", f"{ETCD}.instance"),
        ("ttl = 1", f"{ETCD}.ttl"),
        ("ttl = 61", f"{ETCD}.ttl"),
        ("timeout = 0", f"{ETCD}.timeout"),
        ("wait = -1", f"{ETCD}.wait"),
        ("username = 'turnout'", f"{ETCD}.password"),
        ("password = 'alone'", f"{ETCD}.password"),
        ("cert_file = '/c.pem'", f"{ETCD}.key_file"),
        ("key_file = '/k.pem'", f"{ETCD}.key_file"),
        ("endpoint = ['http://127.0.0.1:2379']", f"{ETCD}.endpoint"),
    ],
)
def test_invalid_options_name_the_field(tmp_path: Path, section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + "[state.etcd]\n" + section + "\n"))
    problems = caught.value.problems
    assert any(re.match(re.escape(field) + r"[: ]", problem) for problem in problems), problems


def test_an_unknown_backend_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + "[state]\nbackend = 'consul'\n"))
    assert any(problem.startswith("state.backend") for problem in caught.value.problems)


def test_check_config_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[state]\nbackend = 'etcd'\n[state.etcd]\nprefix = 'x'\n")
    result = subprocess.run(
        [TURNOUT, "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "state.etcd.prefix" in result.stderr


def test_run_refuses_an_invalid_section(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[state.etcd]\nttl = 100\n")
    result = subprocess.run(
        [TURNOUT, "run", "--config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "state.etcd.ttl" in result.stderr


def test_the_examples_commented_section_is_valid(tmp_path: Path) -> None:
    example = (ROOT / "config.example.toml").read_text()
    block = re.search(r"^# \[state\.etcd\]\n(?:#.*\n)+", example, re.M)
    assert block is not None, "config.example.toml documents [state.etcd]"
    text = "".join(
        line.removeprefix("#").removeprefix(" ") + "\n" for line in block[0].splitlines()
    )
    settings, _ = load_config(write(tmp_path, MINIMAL + text))
    shown = set(re.findall(r"^(\w+) =", text, re.M))
    assert shown == set(EtcdConfig.model_fields), "every option is shown"
    assert settings.state.etcd == EtcdConfig(), "the example shows the defaults"


def test_instance_name_is_the_configured_one_or_host_and_admin_port() -> None:
    assert instance_name(EtcdConfig(instance="edge-a"), 9901) == "edge-a"
    assert instance_name(EtcdConfig(), 9901) == f"{socket.gethostname()}-9901"


async def test_client_from_refuses_a_missing_certificate_at_start(tmp_path: Path) -> None:
    cfg = EtcdConfig(
        endpoints=["https://127.0.0.1:2379"],
        cert_file=tmp_path / "missing.pem",
        key_file=tmp_path / "missing-key.pem",
    )
    with pytest.raises(FileNotFoundError):
        client_from(cfg)


async def test_client_from_keeps_the_password_out_of_its_repr() -> None:
    client = client_from(EtcdConfig(username="turnout", password="s3cret-pass"))
    try:
        assert "s3cret-pass" not in repr(client)
        assert "turnout" in repr(client)
    finally:
        await client.close()
