"""Bearer tokens on the admin API: who may call, who is recorded, what is never written down,
and the rule that only loopback may go without tokens.

The module's instance binds its admin API to 0.0.0.0, which turnout allows only because tokens
are configured: one given in the file, one through `token_env`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import Api, Reply, api, backend_loop, launch, turnout_in, with_ports

from helpers import ProxyProcess, config, toml

CI_TOKEN = "ci-9f8e7d6c5b4a3210-secret"
ALICE_TOKEN = "alice-0123456789abcdef-secret"
ALICE_ENV = "ADMIN_TOKEN_ALICE_FOR_TESTS"


def tokens() -> list[dict[str, str]]:
    return [{"name": "ci-pipeline", "token": CI_TOKEN}, {"name": "alice", "token_env": ALICE_ENV}]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    directory = tmp_path_factory.mktemp("auth")
    with backend_loop() as loop, pytest.MonkeyPatch.context() as env:
        env.setenv(ALICE_ENV, ALICE_TOKEN)
        backends = {name: loop.start(name) for name in ("stable", "canary")}
        data = config(
            {name: [backend.url] for name, backend in backends.items()},
            {"web": {"weights": {"stable": 90, "canary": 10}}},
            admin={"host": "0.0.0.0", "tokens": tokens()},
        )
        with turnout_in(directory, with_ports(data), "turnout.log") as running:
            yield running


@pytest.fixture
def anonymous(proxy: ProxyProcess) -> Api:
    return api(proxy)


@pytest.fixture
def ci(proxy: ProxyProcess) -> Api:
    return api(proxy, CI_TOKEN)


def unauthorized(reply: Reply) -> None:
    problem = reply.problem(401, "unauthorized")
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="turnout"'
    assert "Bearer" in problem["detail"]


CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/routes", None),
    ("GET", "/v1/routes/web", None),
    ("GET", "/v1/pools", None),
    ("GET", "/v1/history", None),
    ("GET", "/v1/workers", None),
    ("PUT", "/v1/routes/web/weights", {"weights": {"stable": 1, "canary": 1}}),
    ("POST", "/v1/routes/web/promote", None),
    ("PATCH", "/v1/pools/stable/backends/stable-1", {"weight": 3}),
    ("DELETE", "/v1/pools/stable/backends/stable-1?force=true", None),
    ("POST", "/v1/reload", None),
]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {CI_TOKEN}x",
        f"Bearer {CI_TOKEN[:-1]}",
        f"bearer-{CI_TOKEN}",
        f"Basic {CI_TOKEN}",
        CI_TOKEN,
        "Bearer alice",
    ],
    ids=[
        "missing",
        "empty",
        "scheme-only",
        "scheme-and-space",
        "longer",
        "shorter",
        "bad-scheme",
        "basic",
        "no-scheme",
        "name-not-token",
    ],
)
def test_without_the_right_token_every_v1_call_is_401_and_changes_nothing(
    ci: Api, anonymous: Api, authorization: str | None
) -> None:
    before = ci.state()
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in CALLS:
        unauthorized(anonymous.call(method, path, body, headers=headers))
    assert ci.state() == before


def test_the_right_token_is_200_and_its_name_is_the_actor(proxy: ProxyProcess, ci: Api) -> None:
    route = ci.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 80, "canary": 20}})
    assert route.ok()["weights"] == {"stable": 80, "canary": 20}
    alice = api(proxy, ALICE_TOKEN)  # the token from token_env
    alice.call("POST", "/v1/routes/web/rollback").ok()
    changes = ci.get("/v1/history?limit=2")["changes"]
    assert [(c["actor"], c["action"]) for c in changes] == [
        ("alice", "rollback"),
        ("ci-pipeline", "set-weights"),
    ]
    assert alice.get("/v1/routes/web")["weights"] == {"stable": 90, "canary": 10}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_scheme_is_case_insensitive(anonymous: Api, scheme: str) -> None:
    reply = anonymous.call("GET", "/v1/routes", headers={"Authorization": f"{scheme} {CI_TOKEN}"})
    assert reply.ok()["routes"][0]["name"] == "web"


@pytest.mark.parametrize("path", ["/healthz", "/ready", "/v1/openapi.json"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0000000000"])
def test_probes_and_the_api_document_need_no_token(
    anonymous: Api, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = anonymous.call("GET", path, headers=headers)
    body = reply.ok()
    assert "WWW-Authenticate" not in reply.headers
    assert body


@pytest.mark.parametrize("path", ["/healthz", "/ready"])
def test_probes_answer_head_with_the_status_and_no_body(anonymous: Api, ci: Api, path: str) -> None:
    reply = anonymous.call("HEAD", path)
    assert reply.status == 200
    assert reply.raw == b""
    assert reply.headers["Content-Type"].startswith("application/json")
    # HEAD stays a probe: it changes nothing and is not a way around the 405 of write paths.
    assert ci.call("HEAD", "/v1/routes/web/switch").status == 405


def test_tokens_never_appear_in_the_log_the_answers_or_the_state_file(
    proxy: ProxyProcess, ci: Api, anonymous: Api
) -> None:
    answers = [
        ci.call("GET", "/v1/routes"),
        ci.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": 70, "canary": 30}}),
        ci.call("POST", "/v1/routes/web/abort"),
        api(proxy, ALICE_TOKEN).call("POST", "/v1/routes/web/rollback"),
        ci.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": -1, "canary": 1}}),
        anonymous.call("GET", "/v1/history", headers={"Authorization": f"Bearer {CI_TOKEN}x"}),
        anonymous.call("GET", "/v1/routes", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}),
        ci.call("GET", "/v1/history?limit=1000"),
        ci.call("GET", "/v1/workers"),
    ]
    assert [reply.status for reply in answers] == [200, 200, 200, 200, 422, 401, 200, 200, 200]
    log = proxy.log()
    assert "admin API on" in log  # (at --log-level debug, its most talkative)
    state = (proxy.config_path.parent / "turnout.state.json").read_text()
    assert "ci-pipeline" in state  # the name is recorded, as the actor
    for secret in (CI_TOKEN, ALICE_TOKEN, CI_TOKEN[:16], ALICE_TOKEN[:16]):
        assert secret not in log
        assert secret not in state
        for reply in answers:
            assert secret.encode() not in reply.raw
            assert all(secret not in value for value in reply.headers.values())


def test_with_tokens_the_admin_api_may_bind_any_address(proxy: ProxyProcess) -> None:
    assert f"admin API on http://0.0.0.0:{proxy.admin_port}" in proxy.log()


def refused(directory: Path, admin: dict[str, Any]) -> tuple[int, str]:
    """`turnout run` with this [admin] section: its exit status and log, once it gave up."""
    data = with_ports(
        config({"stable": ["http://127.0.0.1:9"]}, {"web": {"weights": {"stable": 1}}})
    )
    data["admin"].update(admin)
    path = directory / "turnout.toml"
    path.write_text(toml(data))
    log = directory / "turnout.log"
    process = launch(path, log)
    status = process.wait(15)
    return status, log.read_text()


def test_binding_beyond_loopback_without_tokens_is_refused(tmp_path: Path) -> None:
    status, log = refused(tmp_path, {"host": "0.0.0.0"})
    assert status == 2
    assert "admin.host: 0.0.0.0 refused" in log
    assert "loopback" in log


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ({"name": "short", "token": "0123456789abcde"}, "at least 16 characters"),
        ({"name": "unset", "token_env": "ADMIN_TOKEN_NOT_SET_ANYWHERE"}, "at least 16 characters"),
        ({"name": "both", "token": CI_TOKEN, "token_env": ALICE_ENV}, "exactly one"),
    ],
    ids=["too-short", "token-env-unset", "token-and-token-env"],
)
def test_a_bad_token_is_refused_at_start(
    tmp_path: Path, token: dict[str, str], problem: str
) -> None:
    status, log = refused(tmp_path, {"tokens": [token]})
    assert status == 2
    assert problem in log
    assert "0123456789abcde" not in log
