"""GET /v1/openapi.json is a valid OpenAPI 3.1 document that describes exactly the API served:
every route of the application with its methods, every request body's model, and the bodies
the running instance really answers with."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from admin_support import Api, api, backend_loop
from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel

from admin_api import models, pool_rollout_models, rollout_models, ui_routes
from admin_api.app import ENDPOINTS, create_app
from admin_api.openapi import REF
from helpers import config
from helpers import proxy_process as run_proxy
from proxy.config import Settings
from proxy.control import ControlPlane
from router import build_snapshot

DATA = {"web": {"weights": {"stable": 90, "canary": 10}}}


@pytest.fixture(scope="module")
def admin() -> Iterator[Api]:
    with backend_loop() as loop:
        backends = {name: loop.start(name) for name in ("stable", "canary")}
        data = config({name: [backend.url] for name, backend in backends.items()}, DATA)
        with run_proxy(data) as proxy:
            yield api(proxy)


@pytest.fixture(scope="module")
def document(admin: Api) -> dict[str, Any]:
    reply = admin.call("GET", "/v1/openapi.json")
    body: dict[str, Any] = reply.ok()
    return body


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> web.Application:
    """The admin application as `turnout run` builds it (never started: only its routes)."""
    data = config({"stable": ["http://127.0.0.1:9"]}, {"web": {"weights": {"stable": 1}}})
    settings = Settings(**{**data, "state": {"persist": False}})
    path = Path(tmp_path_factory.mktemp("openapi")) / "turnout.toml"
    control = ControlPlane(path, settings, build_snapshot(settings.spec()))
    return create_app(control)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert [str(error) for error in OpenAPIV31SpecValidator(document).iter_errors()] == []
    validate(document)  # detects the version itself; raises on the first error


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete", "head", "options")
    }


def test_every_route_of_the_application_is_documented(
    document: dict[str, Any], app: web.Application
) -> None:
    served = {
        (route.method, resource.canonical)
        for resource in app.router.resources()
        for route in resource
    }
    declared = {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}
    # The dashboard's page and files are served beside the API, not part of it.
    assert served == declared | set(ui_routes.ROUTES)
    served -= set(ui_routes.ROUTES)
    assert operations(document) == served
    # The same methods per path, so a 405's Allow header and the document agree.
    for path, item in document["paths"].items():
        allowed = {method for method, p in served if p == path}
        assert {method.upper() for method in item} == allowed, path


def test_path_and_query_parameters_are_documented(document: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        for name in re.findall(r"{(\w+)}", endpoint.path):
            assert ("path", name) in parameters, endpoint.path
        for query in endpoint.query:
            assert ("query", query.name) in parameters, endpoint.path
        # If-Match exactly where the handler reads it (and so may answer 412).
        assert (("header", "If-Match") in parameters) is (412 in endpoint.errors), endpoint.path
    patch = document["paths"]["/v1/pools/{pool}/backends/{backend}"]
    assert "wait" in {p["name"] for p in patch["patch"]["parameters"]}
    assert "force" in {p["name"] for p in patch["delete"]["parameters"]}
    assert "limit" in {p["name"] for p in document["paths"]["/v1/history"]["get"]["parameters"]}


def request_models() -> set[type[BaseModel]]:
    """Every model models.py, rollout_models.py and pool_rollout_models.py declare under their
    "# Requests" heading."""
    found = set()
    for module in (models, rollout_models, pool_rollout_models):
        source, _ = inspect.getsourcelines(module)
        start = source.index("# Requests\n")
        end = source.index("# Responses\n")
        for name, model in vars(module).items():
            if (
                inspect.isclass(model)
                and issubclass(model, models.Model)
                and model.__module__ == module.__name__
            ):
                _, line = inspect.getsourcelines(model)
                if start < line - 1 < end:
                    found.add(model)
                    assert model.__name__ == name
    return found


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    schema.pop("$defs", None)
    return schema


def test_every_request_model_is_referenced_with_its_schema(document: dict[str, Any]) -> None:
    wanted = request_models()
    assert models.WeightsChange in wanted
    assert models.BackendPatch in wanted
    referenced = set()
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        if endpoint.body is None:
            assert "requestBody" not in operation
            continue
        body = operation["requestBody"]
        assert body["required"] is not endpoint.body_optional
        assert body["content"]["application/json"]["schema"] == {
            "$ref": REF.format(model=endpoint.body.__name__)
        }
        referenced.add(endpoint.body)
    assert referenced == wanted
    schemas = document["components"]["schemas"]
    for model in wanted:
        assert schemas[model.__name__] == schema_of(model)
    # Field names are the JSON ones (camelCase) and unknown fields are refused.
    assert "toRevision" in schemas["UndoChange"]["properties"]
    assert "adminState" in schemas["BackendPatch"]["properties"]
    assert all(schemas[m.__name__]["additionalProperties"] is False for m in wanted)


def test_responses_and_errors_are_documented(document: dict[str, Any]) -> None:
    problem = {"$ref": REF.format(model="ProblemView")}
    for endpoint in ENDPOINTS:
        responses = document["paths"][endpoint.path][endpoint.method.lower()]["responses"]
        if endpoint.method == "HEAD":
            # A status and headers only: nothing in the document may promise a body.
            assert all("content" not in response for response in responses.values())
            continue
        success = responses[str(endpoint.status)]["content"][endpoint.media]["schema"]
        if endpoint.response is not None:
            assert success == {"$ref": REF.format(model=endpoint.response.__name__)}
        for status in endpoint.errors:
            assert (
                responses[str(status)]["content"]["application/problem+json"]["schema"] == problem
            )
        if endpoint.body is not None:
            assert {"400", "413", "415", "422"} <= set(responses), endpoint.path
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        assert (operation.get("security") == []) is endpoint.public
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def conforms(document: dict[str, Any], model: str, instance: Any) -> None:
    """`instance` validates against the document's schema for `model`."""
    schema = {"$ref": REF.format(model=model), "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_what_the_instance_answers_matches_the_document(
    admin: Api, document: dict[str, Any]
) -> None:
    admin.call("PATCH", "/v1/pools/canary/backends/canary-1", {"weight": 2}).ok()
    conforms(document, "RouteList", admin.get("/v1/routes"))
    conforms(document, "RouteView", admin.get("/v1/routes/web"))
    conforms(document, "PoolList", admin.get("/v1/pools"))
    conforms(document, "PoolView", admin.get("/v1/pools/stable"))
    conforms(document, "HistoryView", admin.get("/v1/history"))
    conforms(document, "WorkerList", admin.get("/v1/workers"))
    conforms(document, "Ready", admin.get("/ready"))
    conforms(document, "Status", admin.get("/healthz"))
    reply = admin.call("PUT", "/v1/routes/web/weights", {"weights": {"stable": -1, "canary": 1}})
    conforms(document, "ProblemView", reply.problem(422, "invalid-change"))
    with pytest.raises(jsonschema.ValidationError):
        conforms(document, "RouteView", {"name": "web"})


def test_servers_name_the_address_the_document_was_fetched_from(admin: Api) -> None:
    # No fixed 127.0.0.1:9901: this instance listens on a free port.
    assert admin.get("/v1/openapi.json")["servers"] == [{"url": admin.url}]
    for host in ("admin.example:8443", "[::1]:9901", "10.1.2.3"):
        reply = admin.call("GET", "/v1/openapi.json", headers={"Host": host})
        assert reply.ok()["servers"] == [{"url": f"http://{host}"}]
    # A Host that names no server: the listener's own address instead.
    reply = admin.call("GET", "/v1/openapi.json", headers={"Host": "a b/c"})
    assert reply.ok()["servers"] == [{"url": admin.url}]


def test_401_is_documented_wherever_a_token_is_needed(document: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        responses = document["paths"][endpoint.path][endpoint.method.lower()]["responses"]
        assert ("401" in responses) is not endpoint.public, (endpoint.method, endpoint.path)


def test_history_limit_is_an_integer_and_its_400_documented(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/history"]["get"]
    (limit,) = [p for p in operation["parameters"] if p["name"] == "limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert "400" in operation["responses"]
