"""Configuration: TOML + environment, every error naming its field, never silent defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

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
            assert f"\n{option} =" in example or f"\n# {option} =" in example, (
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


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("canary = 5", "preview = 5") + "[listen]\nport = -1\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert len(caught.value.problems) == 1  # types are checked first, and stop there
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL.replace("canary = 5", "preview = 5, other = 1")))
    assert len(caught.value.problems) == 2


def test_a_missing_file_is_an_error_not_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_invalid_toml_is_reported_with_its_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 1"):
        load_config(write(tmp_path, "[routes.web\n"))
