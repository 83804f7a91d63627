"""Error envelope, bad input, request ids, health, readiness, metrics, OpenAPI."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from amphora.models import User
from amphora.runtime import Runtime
from tests.helpers import API, unique_email


async def _user_count(runtime: Runtime) -> int:
    async with runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_bad_bodies_get_clear_4xx_and_write_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    url = f"{API}/auth/register"
    headers = {"content-type": "application/json"}
    malformed = await client.post(url, content=b'{"email": "a@b.c", ', headers=headers)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"

    wrong_type = await client.post(url, json={"email": 42, "password": ["x"], "display_name": None})
    assert wrong_type.status_code == 422
    fields = {tuple(d["loc"]) for d in wrong_type.json()["error"]["details"]}
    assert {("body", "email"), ("body", "password"), ("body", "display_name")} <= fields

    unknown = await client.post(
        url,
        json={
            "email": unique_email(),
            "password": "long enough password",
            "display_name": "X",
            "is_superuser": True,
        },
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["type"] == "extra_forbidden"

    huge = await client.post(
        url,
        content=b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers=headers,
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"

    too_long = await client.post(
        url, json={"email": unique_email(), "password": "p" * 2000, "display_name": "X"}
    )
    assert too_long.status_code == 422
    assert await _user_count(runtime) == 0


async def test_oversized_body_without_length_header_is_refused(
    client: httpx.AsyncClient,
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        f"{API}/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_unknown_route_and_method_use_the_envelope(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{API}/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete(f"{API}/auth/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    no_token = await client.get(f"{API}/users/me")
    assert no_token.status_code == 401 and no_token.headers["WWW-Authenticate"] == "Bearer"


async def test_request_ids(client: httpx.AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "edge-12345678"})
    assert echoed.headers["x-request-id"] == "edge-12345678"
    hostile = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert hostile.headers["x-request-id"] != "bad id\nwith newline"
    error = await client.get(f"{API}/users/me", headers={"X-Request-ID": "trace-abcdefgh"})
    assert error.json()["error"]["request_id"] == "trace-abcdefgh"


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "jobs": "ok", "storage": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'amphora_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics.text


async def test_readiness_reports_a_broken_storage(settings_factory: object) -> None:
    from asgi_lifespan import LifespanManager

    from amphora.app import create_app

    settings = settings_factory(  # type: ignore[operator]
        storage_url="s3://no-such-bucket-here",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_allow_http=True,
        s3_access_key_id="x",
        s3_secret_access_key="y",
    )
    app = create_app(settings, run_jobs=False)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["storage"].startswith("error")


async def test_openapi_documents_routes_errors_and_examples(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/users/me",
        "/api/v1/users/me/tokens",
        "/api/v1/admin/users",
    ):
        assert path in paths
    register = paths["/api/v1/auth/register"]["post"]
    assert "409" in register["responses"]
    example = register["responses"]["409"]["content"]["application/json"]["example"]
    assert {"code", "message", "request_id"} <= set(example["error"])
    assert schema["components"]["schemas"]["RegisterIn"]["examples"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert (await client.get("/docs")).status_code == 200
