"""Configuration: TOML + environment, every error naming its field, never silent defaults."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from helpers import config, proxy_process, start_backend
from proxy.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[pools.stable]
backends = [{ name = "s1", url = "http://127.0.0.1:9001" }]
[pools.canary]
backends = [{ name = "c1", url = "http://127.0.0.1:9002" }]
[routes.web]
weights = { stable = 95, canary = 5 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turnout.toml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid_and_documents_every_option() -> None:
    settings, snapshot = load_config(ROOT / "config.example.toml")
    assert [route.name for route in snapshot.routes] == ["checkout", "web"]
    example = (ROOT / "config.example.toml").read_text()
    # Every option of every section appears in the example, so none is undocumented.
    sections = ("listen", "process", "admin", "state", "downstream", "upstream", "forwarded")
    for section in (*sections, "health", "outlier", "metrics", "access_log", "debug"):
        for option in type(getattr(settings, section)).model_fields:
            shown = (f"\n{option} =", f"\n# {option} =", f"\n# [{section}.{option}]")
            assert any(text in example for text in shown), (
                f"{section}.{option} missing from the example"
            )


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_LISTEN__PORT", "9999")
    monkeypatch.setenv("TURNOUT_ROUTES__WEB__WEIGHTS__CANARY", "25")
    monkeypatch.setenv("TURNOUT_UPSTREAM__READ_TIMEOUT", "2.5")
    settings, snapshot = load_config(write(tmp_path, MINIMAL))
    assert settings.listen.port == 9999
    assert settings.upstream.read_timeout == 2.5
    # Deep merge: the override changes one weight and keeps the other from the file.
    assert settings.routes["web"].weights == {"stable": 95, "canary": 25}
    spec = snapshot.spec.route("web")
    assert spec is not None
    assert dict(spec.weights) == {"stable": 95, "canary": 25}


ORDERED = """
[pools.stable]
backends = [{ name = "s1", url = "http://127.0.0.1:9001" }]
[pools.canary]
backends = [{ name = "c1", url = "http://127.0.0.1:9002" }]
[pools.shop]
backends = [{ name = "shop-1", url = "http://127.0.0.1:9003" }]
[routes.checkout]
path_prefix = "/checkout"
weights = { shop = 1 }
[routes.api]
path_prefix = "/api"
weights = { stable = 1 }
[routes.web]
weights = { stable = 95, canary = 5 }
"""


@pytest.mark.parametrize(
    ("environment", "routes", "weights", "pools"),
    [
        pytest.param(
            {"TURNOUT_ROUTES__WEB__WEIGHTS__CANARY": "25"},
            ["checkout", "api", "web"],
            [("stable", 95), ("canary", 25)],
            ["stable", "canary", "shop"],
            id="the-readme-example",
        ),
        pytest.param(
            {
                "TURNOUT_POOLS__PREVIEW__BACKENDS": '[{"name": "p1", "url": "http://127.0.0.1:1"}]',
                "TURNOUT_ROUTES__WEB__WEIGHTS__PREVIEW": "1",
                "TURNOUT_ROUTES__WEB__WEIGHTS__STABLE": "90",
            },
            ["checkout", "api", "web"],
            [("stable", 90), ("canary", 5), ("preview", 1)],
            ["stable", "canary", "shop", "preview"],
            id="added-keys-go-last",
        ),
        pytest.param(
            {
                "TURNOUT_ROUTES__ADMIN__PATH_PREFIX": "/admin",
                "TURNOUT_ROUTES__ADMIN__WEIGHTS__SHOP": "1",
            },
            ["checkout", "api", "web", "admin"],
            [("stable", 95), ("canary", 5)],
            ["stable", "canary", "shop"],
            id="an-added-route-goes-last",
        ),
        pytest.param(
            {"TURNOUT_ROUTES__WEB": '{"weights": {"canary": 50, "stable": 50}}'},
            ["checkout", "api", "web"],
            [("stable", 50), ("canary", 50)],
            ["stable", "canary", "shop"],
            id="a-json-table-keeps-the-files-order",
        ),
    ],
)
def test_an_environment_override_keeps_the_order_of_the_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    routes: list[str],
    weights: list[tuple[str, int]],
    pools: list[str],
) -> None:
    # Order in the file is meaning: routes match in order, the first pool of a split is the
    # baseline its sticky buckets are laid out from. An override changes values, never order.
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings, snapshot = load_config(write(tmp_path, ORDERED))
    assert [route.name for route in snapshot.routes] == routes
    assert list(settings.routes) == routes
    web = snapshot.spec.route("web")
    assert web is not None
    assert list(web.weights) == weights
    assert list(snapshot.pools) == pools


async def test_an_environment_override_does_not_reorder_a_running_turnout() -> None:
    backends = {name: await start_backend(name) for name in ("shop", "stable", "canary")}
    try:
        data = config(
            {name: [backend.url] for name, backend in backends.items()},
            {
                "checkout": {"path_prefix": "/checkout", "weights": {"shop": 1}},
                "api": {"path_prefix": "/api", "weights": {"stable": 1}},
                "web": {"weights": {"stable": 1, "canary": 0}},
            },
        )
        # The README's example: one weight of the catch-all route, from the environment.
        override = {"TURNOUT_ROUTES__WEB__WEIGHTS__CANARY": "1"}
        with proxy_process(data, environment=override) as proxy:

            def get(path: str) -> str:
                url = f"http://127.0.0.1:{proxy.port}{path}"
                with urllib.request.urlopen(url, timeout=10) as response:
                    body: bytes = response.read()
                    return body.decode()

            assert await asyncio.to_thread(get, "/checkout/pay") == "shop"
            assert await asyncio.to_thread(get, "/api/orders") == "stable"
            _, route = await asyncio.to_thread(proxy.admin, "GET", "/v1/routes/web")
            assert list(route["weights"]) == ["stable", "canary"]
            assert route["weights"] == {"stable": 1, "canary": 1}
    finally:
        for backend in backends.values():
            await backend.stop()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[listen]\nport = 70000\n", "listen.port"),
        ('[listen]\nport = "eighty"\n', "listen.port"),
        ("[upstream]\nread_timeout = -1\n", "upstream.read_timeout"),
        ("[upstream]\nreed_timeout = 1\n", "upstream.reed_timeout"),
        ('[forwarded]\ntrusted_proxies = ["10.0.0.0/33"]\n', "forwarded.trusted_proxies"),
        (
            MINIMAL.replace("http://127.0.0.1:9002", "https://127.0.0.1:9002"),
            "pools.canary.backends[0].url",
        ),
        (
            MINIMAL.replace("http://127.0.0.1:9002", "http://127.0.0.1:9002/app"),
            "pools.canary.backends[0].url",
        ),
        (MINIMAL.replace("canary = 5", "canary = -5"), "routes.web.weights"),
        (
            MINIMAL.replace("stable = 95, canary = 5", "stable = 0, canary = 0"),
            "routes.web.weights",
        ),
        (MINIMAL.replace("canary = 5", "preview = 5"), "routes.web.weights.preview"),
        (MINIMAL + 'mode = "blue-green"\n', "routes.web"),
        (MINIMAL + 'sticky = { same_site = "None" }\n', "routes.web.sticky.same_site"),
        (
            MINIMAL
            + 'rules = [{ name = "r", header = "x", match = "regex", value = "(", pool = "canary" }]\n',
            "routes.web.rules[0].value",
        ),
    ],
)
def test_invalid_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert any(problem.startswith(field) for problem in caught.value.problems), message


REGEX = 'rules = [{ name = "r", header = "x", match = "regex", value = "(", pool = "canary" }]\n'
UNCLOSED = "missing ), unterminated subpattern at position 0"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        pytest.param(
            MINIMAL.replace("canary = 5", "canry = 5") + REGEX + "[upstream]\nread_timeout = -1\n",
            [
                "upstream.read_timeout: Input should be greater than 0"
                " (in the file, or TURNOUT_UPSTREAM__READ_TIMEOUT if set)",
                f"routes.web.rules[0].value: invalid regex: {UNCLOSED}",
                "routes.web.weights.canry: unknown pool 'canry'",
            ],
            id="field-unknown-pool-regex",
        ),
        pytest.param(
            # A field error in the route itself: its other fields are still checked.
            MINIMAL.replace("canary = 5", "canry = 5") + "path_prefix = 5\n" + REGEX,
            [
                "routes.web.path_prefix: Input should be a valid string"
                " (in the file, or TURNOUT_ROUTES__WEB__PATH_PREFIX if set)",
                f"routes.web.rules[0].value: invalid regex: {UNCLOSED}",
                "routes.web.weights.canry: unknown pool 'canry'",
            ],
            id="field-error-in-the-same-route",
        ),
        pytest.param(
            # The second rule keeps its own index although the first one is unusable.
            MINIMAL
            + 'rules = [{ name = "r", header = 7, pool = "canary" },'
            + ' { name = "s", header = "x", match = "regex", value = "(", pool = "nowhere" }]\n',
            [
                "routes.web.rules[0].header: Input should be a valid string",
                f"routes.web.rules[1].value: invalid regex: {UNCLOSED}",
                "routes.web.rules[1].pool: unknown pool 'nowhere'",
            ],
            id="list-items-keep-their-index",
        ),
        pytest.param(
            MINIMAL.replace('{ name = "c1", url = "http://127.0.0.1:9002" }', '{ name = "c1" }')
            + 'mode = "blue-green"\npools = ["stable", "canary"]\n',
            [
                "pools.canary.backends[0].url: Field required",
                "routes.web.weights: belongs to mode 'weighted' only",
                "routes.web.active: blue-green needs an active pool",
            ],
            id="missing-field-and-missing-active",
        ),
        pytest.param(
            # An unusable pool still exists: no route is told that it names an unknown pool.
            # An unusable mode: nothing is said about the fields it decides on.
            """
[pools]
stable = { backends = [{ name = "s1", url = "http://127.0.0.1:9001" }] }
canary = "oops"
[routes.web]
mode = "bluegreen"
pools = ["stable", "canary"]
active = "stable"
[routes.api]
path_prefix = "/api"
weights = { stable = 1, canary = 1, nowhere = 2 }
[listen]
port = -1
""",
            [
                "listen.port: Input should be greater than or equal to 0"
                " (in the file, or TURNOUT_LISTEN__PORT if set)",
                "pools.canary: Input should be a valid dictionary or instance of PoolConfig"
                " (in the file, or TURNOUT_POOLS__CANARY if set)",
                "routes.web.mode: Input should be 'weighted' or 'blue-green'"
                " (in the file, or TURNOUT_ROUTES__WEB__MODE if set)",
                "routes.api.weights.nowhere: unknown pool 'nowhere'",
            ],
            id="no-consequential-problems",
        ),
        pytest.param(
            # The token is unusable, not absent: the admin API may still bind beyond loopback.
            MINIMAL + '[admin]\nhost = "0.0.0.0"\ntokens = [{ name = "no spaces", token = "x" }]\n',
            [
                "admin.tokens[0].name: String should match pattern"
                " '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'",
            ],
            id="no-problem-of-a-stand-in",
        ),
        pytest.param(
            MINIMAL.replace("canary = 5", "preview = 5, other = 1"),
            [
                "routes.web.weights.preview: unknown pool 'preview'",
                "routes.web.weights.other: unknown pool 'other'",
            ],
            id="cross-field-only",
        ),
    ],
)
def test_every_problem_is_reported_in_one_round(
    tmp_path: Path, text: str, problems: list[str]
) -> None:
    # Field errors and cross-field errors together: fixing the first kind never reveals more.
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.problems == problems


def test_a_missing_file_is_an_error_not_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_invalid_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 1"):
        load_config(write(tmp_path, "[routes.web\n"))
