"""Tokens and scopes (401/403), rate limiting (429 + Retry-After), input validation (422), the
last-resort error handler, CORS and log masking. All with a fake defender: no model needed."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest

from content_arena.config import ConfigError
from content_arena.service.security import TokenTable
from support.api import ADMIN, ADMIN_TOKEN, READ, FakeDefender, wait_for

ADMIN_ONLY = [
    ("post", "/api/v1/battles", {"rounds": 5}),
    ("post", "/api/v1/battles/abc/stop", None),
    ("post", "/api/v1/models/promote", {"version": 1}),
    ("post", "/pipeline/trigger", None),
]
READ_ENDPOINTS = [
    ("get", "/api/v1/battles/abc", None),
    ("get", "/api/v1/battles/abc/rounds", None),
    ("get", "/api/v1/models", None),
    ("get", "/api/v1/models/champion", None),
    ("get", "/api/v1/metrics/quality", None),
    ("get", "/pipeline/runs/abc", None),
    ("post", "/api/v1/classify", {"text": "hello"}),
]


@pytest.fixture
def client(service_config: Any, make_client: Any) -> Any:
    return make_client(service_config(), defender=FakeDefender(), battle_threads=1)


def call(client: Any, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.request(method.upper(), path, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY + READ_ENDPOINTS)
def test_missing_or_invalid_token_is_401_with_a_challenge(client: Any, method: str, path: str, body: Any) -> None:
    missing = call(client, method, path, body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="content-arena"'
    assert missing.json() == {"detail": "missing or invalid bearer token"}
    for header in ("Bearer wrong-token", "Basic YWRtaW46YWRtaW4=", "Bearer", f"bearer {ADMIN_TOKEN}x"):
        invalid = call(client, method, path, body, {"Authorization": header})
        assert invalid.status_code == 401, header
        assert "invalid_token" in invalid.headers["www-authenticate"]
        assert invalid.json() == {"detail": "missing or invalid bearer token"}  # same answer, no hints


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_read_scope_cannot_write(client: Any, method: str, path: str, body: Any) -> None:
    response = call(client, method, path, body, READ)
    assert response.status_code == 403
    assert response.json() == {"detail": "this operation needs the admin scope"}


@pytest.mark.parametrize(("method", "path", "body"), READ_ENDPOINTS)
def test_read_and_admin_tokens_pass_read_endpoints(client: Any, method: str, path: str, body: Any) -> None:
    for headers in (READ, ADMIN):
        assert call(client, method, path, body, headers).status_code not in (401, 403)


def test_probes_and_metrics_need_no_token(client: Any) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    assert client.get("/api/v1/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_tokens_file_and_anonymous_access(tmp_path: Any, service_config: Any, make_client: Any) -> None:
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps({"file-admin": "admin", "file-read": "read"}))
    cfg = service_config(api={"tokens": {}, "tokens_file": str(tokens_file)})
    client = make_client(cfg, defender=FakeDefender(), battle_threads=1)
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer file-read"}).status_code == 200
    assert client.post("/pipeline/trigger", headers={"Authorization": "Bearer file-read"}).status_code == 403
    assert client.get("/api/v1/models").status_code == 401

    # Anonymous access with tokens configured: read only.
    cfg = service_config(api={"allow_anonymous": True})
    client = make_client(cfg, defender=FakeDefender(), battle_threads=1)
    assert client.get("/api/v1/models").status_code == 200
    assert client.post("/api/v1/battles", json={"rounds": 1}).status_code == 401
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_token_table_rejects_bad_scopes_and_files(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="scope must be one of read, admin"):
        TokenTable({"t": "root"})
    bad = tmp_path / "tokens.json"
    bad.write_text("[1, 2]")
    from content_arena.config import ApiConfig

    with pytest.raises(ConfigError, match="expected a JSON object"):
        TokenTable.from_config(ApiConfig(tokens_file=str(bad)))
    table = TokenTable({"a": "admin", "r": "read"})
    assert table.lookup("a") == "admin" and table.lookup("r") == "read" and table.lookup("x") is None
    assert table.anonymous_scope() is None


# ----------------------------------------------------------------------------------- rate limiting


def _exhaust(client: Any, headers: dict[str, str]) -> Any:
    for _ in range(3):
        assert client.get("/api/v1/models", headers=headers).status_code == 200
    return client.get("/api/v1/models", headers=headers)


def test_rate_limit_answers_429_with_retry_after(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(api={"rate_limit_per_minute": 3}), defender=FakeDefender(), battle_threads=1)
    limited = _exhaust(client, READ)
    assert limited.status_code == 429
    assert limited.json() == {"detail": "rate limit exceeded"}
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    # Probes are never limited.
    assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_rate_limit_counts_unauthenticated_requests_per_address(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(api={"rate_limit_per_minute": 3}), defender=FakeDefender(), battle_threads=1)
    for _ in range(3):
        assert client.get("/api/v1/models", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer guess"}).status_code == 429


@pytest.mark.redis
def test_rate_limit_is_shared_through_redis(service_config: Any, make_client: Any, redis_backend: Any) -> None:
    """Two app instances (replicas) on one Redis share the same buckets."""
    cfg = service_config(api={"rate_limit_per_minute": 3})
    first = make_client(cfg, defender=FakeDefender(), queue=redis_backend, battle_threads=1)
    second = make_client(cfg, defender=FakeDefender(), queue=redis_backend, battle_threads=1)
    assert first.get("/api/v1/models", headers=READ).status_code == 200
    assert second.get("/api/v1/models", headers=READ).status_code == 200
    assert first.get("/api/v1/models", headers=READ).status_code == 200
    limited = second.get("/api/v1/models", headers=READ)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


# -------------------------------------------------------------------------------------- validation


def _post_raw(client: Any, path: str, raw: bytes) -> Any:
    return client.post(path, content=raw, headers={**ADMIN, "Content-Type": "application/json"})


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    return detail[0]


@pytest.fixture
def small_client(service_config: Any, make_client: Any) -> Any:
    cfg = service_config(api={"max_text_length": 20, "max_batch_size": 3, "max_rounds": 50})
    return make_client(cfg, defender=FakeDefender(), battle_threads=1)


def test_text_validation(small_client: Any) -> None:
    oversized = _error(small_client.post("/api/v1/classify", json={"text": "가" * 21}, headers=ADMIN))
    assert oversized["loc"] == ["body", "text"] and "longer than 20" in oversized["msg"]
    nul = _error(small_client.post("/api/v1/classify", json={"texts": ["ok", "a\u0000b"]}, headers=ADMIN))
    assert nul["loc"] == ["body", "texts", 1] and "NUL" in nul["msg"]
    surrogate = _error(_post_raw(small_client, "/api/v1/classify", b'{"text": "bad \\ud800 text"}'))
    assert surrogate["loc"] == ["body", "text"] and "surrogate" in surrogate["msg"]
    invalid_bytes = _error(_post_raw(small_client, "/api/v1/classify", b'{"text": "\xff\xfe"}'))
    assert "UTF-8" in invalid_bytes["msg"]
    too_many = _error(small_client.post("/api/v1/classify", json={"texts": ["a"] * 4}, headers=ADMIN))
    assert too_many["loc"] == ["body", "texts"] and "at most 3" in too_many["msg"]
    assert _error(small_client.post("/api/v1/classify", json={"texts": []}, headers=ADMIN))["loc"] == ["body", "texts"]
    assert _error(small_client.post("/api/v1/classify", json={"text": "a", "texts": ["b"]}, headers=ADMIN))
    assert _error(small_client.post("/api/v1/classify", json={}, headers=ADMIN))
    assert _error(small_client.post("/api/v1/classify", json={"text": 5}, headers=ADMIN))["loc"] == ["body", "text"]
    assert _error(_post_raw(small_client, "/api/v1/classify", b'{"text": '))["type"] == "json_invalid"
    # Bodies beyond what max_batch_size x max_text_length can need are refused before parsing.
    huge = _post_raw(small_client, "/api/v1/classify", b'{"text": "' + b"a" * 70_000 + b'"}')
    assert huge.status_code == 413
    # Valid Korean and English text at the limit passes.
    ok = small_client.post("/api/v1/classify", json={"texts": ["가" * 20, "hello 놈"]}, headers=ADMIN)
    assert ok.status_code == 200 and [r["is_toxic"] for r in ok.json()["results"]] == [False, True]


def test_battle_validation(small_client: Any) -> None:
    unknown = _error(small_client.post("/api/v1/battles", json={"rounds": 5, "strategies": ["spacing", "warp"]}, headers=ADMIN))
    assert unknown["loc"] == ["body", "strategies"] and "unknown strategy 'warp'" in unknown["msg"]
    assert "spacing" in unknown["msg"]  # the reason lists the known ones
    llm = _error(small_client.post("/api/v1/battles", json={"rounds": 5, "strategies": "llm"}, headers=ADMIN))
    assert llm["loc"] == ["body", "strategies"]
    rounds = _error(small_client.post("/api/v1/battles", json={"rounds": 51}, headers=ADMIN))
    assert rounds["loc"] == ["body", "rounds"] and "at most 50" in rounds["msg"]
    assert _error(small_client.post("/api/v1/battles", json={"rounds": 0}, headers=ADMIN))["loc"] == ["body", "rounds"]
    bad_source = _error(small_client.post("/api/v1/battles", json={"rounds": 5, "seed_source": "web"}, headers=ADMIN))
    assert bad_source["loc"] == ["body", "seed_source"]
    assert _error(small_client.post("/api/v1/battles", json={"rounds": 5, "extra": 1}, headers=ADMIN))["loc"] == ["body", "extra"]
    assert _error(small_client.get("/api/v1/battles/x/rounds?limit=0", headers=ADMIN))["loc"] == ["query", "limit"]
    no_seeds = _error(small_client.post("/api/v1/battles", json={"rounds": 5, "seed_source": "training_data"}, headers=ADMIN))
    assert no_seeds["loc"] == ["body", "seed_source"]


def test_strict_integers_bounded_strategy_names_and_uuid_ids(small_client: Any) -> None:
    for rounds in (True, "5", 5.0):
        assert _error(small_client.post("/api/v1/battles", json={"rounds": rounds}, headers=ADMIN))["loc"] == [
            "body", "rounds"]
    for version in (True, "1", 1.0):
        assert _error(small_client.post("/api/v1/models/promote", json={"version": version}, headers=ADMIN))[
            "loc"] == ["body", "version"]
    long_name = "+".join(["invisible"] * 11)  # 109 characters
    for spec in ([long_name], long_name, "nfd+nfd+nfd+nfd+nfd", ["spacing", "nfd+nfd+nfd+nfd+nfd"]):
        error = _error(small_client.post("/api/v1/battles", json={"rounds": 5, "strategies": spec}, headers=ADMIN))
        assert error["loc"][:2] == ["body", "strategies"], (spec, error)
    four = small_client.post("/api/v1/battles", json={"rounds": 5, "strategies": ["nfd+invisible+homoglyph+spacing"]},
                             headers=ADMIN)
    assert four.status_code == 202, four.text
    for path in ("/api/v1/battles/%00", "/api/v1/battles/%00/rounds", "/pipeline/runs/%00",
                 "/api/v1/battles/" + "a" * 5000, "/api/v1/battles/not-a-uuid", f"/api/v1/battles/{'0' * 32}"):
        response = small_client.get(path, headers=ADMIN)
        assert response.status_code == 404 and response.json()["detail"].startswith("no such"), (path, response.text)
    for path in ("/api/v1/battles/%00/stop", "/api/v1/battles/%00/resume"):
        assert small_client.post(path, headers=ADMIN).status_code == 404
    # The hyphenated form of a battle's id finds it too.
    battle_id = four.json()["id"]
    hyphenated = str(uuid.UUID(battle_id))
    assert small_client.get(f"/api/v1/battles/{hyphenated}", headers=ADMIN).json()["id"] == battle_id


def test_request_headers_beyond_the_limit_get_431(service_config: Any, make_client: Any) -> None:
    client = make_client(service_config(api={"max_header_bytes": 4096}), defender=FakeDefender(), battle_threads=1)
    big = client.get("/api/v1/models", headers={**READ, "X-Padding": "x" * 5000})
    assert big.status_code == 431 and big.json() == {"detail": "request headers too large: at most 4096 bytes"}
    assert client.get("/api/v1/models", headers={**READ, "X-Padding": "x" * 1000}).status_code == 200


def test_forwarded_headers_are_believed_only_from_configured_proxies() -> None:
    from content_arena.config import ApiConfig
    from content_arena.service.commands import server_options

    default = server_options(ApiConfig())
    assert default["proxy_headers"] is False and "forwarded_allow_ips" not in default
    assert default["h11_max_incomplete_event_size"] == 16_384
    proxied = server_options(ApiConfig(trusted_proxies=["10.0.0.7", "10.0.0.8"]))
    assert proxied["proxy_headers"] is True and proxied["forwarded_allow_ips"] == "10.0.0.7,10.0.0.8"


def test_authentication_runs_before_the_rate_limiter_touches_the_queue(
    service_config: Any, make_client: Any,
) -> None:
    """A request without a valid token never reaches the shared buckets: it cannot see a queue error and
    cannot drain a valid token's bucket."""
    client = make_client(service_config(api={"rate_limit_per_minute": 3}), defender=FakeDefender(), battle_threads=1)
    backend = client.app.state.arena.ctx.backend
    touched: list[str] = []
    real = backend.take_token

    def counting(bucket: str, *args: Any) -> float:
        touched.append(bucket)
        return real(bucket, *args)

    backend.take_token = counting
    for _ in range(5):
        assert client.get("/api/v1/models", headers={"Authorization": "Bearer guess"}).status_code in (401, 429)
    assert touched == []
    assert client.get("/api/v1/models", headers=READ).status_code == 200 and len(touched) == 1


def test_attacked_texts_are_cut_to_attack_max_text_length(service_config: Any, make_client: Any) -> None:
    cfg = service_config(attack={"max_text_length": 12, "batch_size": 8})
    client = make_client(cfg, defender=FakeDefender(), battle_threads=1)
    created = client.post("/api/v1/battles", json={"rounds": 16, "strategies": ["jamo_split+invisible"]},
                          headers=ADMIN).json()
    done = wait_for(lambda: (b := client.get(f"/api/v1/battles/{created['id']}", headers=READ).json())["status"]
                    in ("completed", "failed") and b)
    assert done["status"] == "completed", done
    rounds = client.get(f"/api/v1/battles/{created['id']}/rounds", headers=READ).json()["rounds"]
    assert len(rounds) == 16
    assert all(len(r["original_text"]) <= 12 and len(r["attacked_text"]) <= 12 for r in rounds)
    assert any(len(r["attacked_text"]) == 12 for r in rounds), "no variant reached the cap: the test proves nothing"


def test_validation_errors_never_echo_the_input(small_client: Any) -> None:
    secret = "개새끼 secret text " * 3
    response = small_client.post("/api/v1/classify", json={"text": secret}, headers=ADMIN)
    assert response.status_code == 422 and "secret" not in response.text


# ------------------------------------------------------------------------------ errors, CORS, logs


def test_unhandled_error_is_a_bare_500_with_request_id(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    state = client.app.state.arena

    def explode(**_: Any) -> Any:
        raise RuntimeError("db password=hunter2 at /srv/secret/path")

    state.ctx.store.list_models = explode
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/models", headers={**READ, "X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "request_id": "req-123"}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "req-123"
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].exc_info and getattr(logged[0], "request_id", None) == "req-123"


def test_cors_allows_only_configured_origins(service_config: Any, make_client: Any) -> None:
    cfg = service_config(api={"cors_origins": ["https://arena.example"]})
    client = make_client(cfg, defender=FakeDefender(), battle_threads=1)
    allowed = client.get("/health", headers={"Origin": "https://arena.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://arena.example"
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options("/api/v1/classify", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400
    plain = make_client(service_config(), defender=FakeDefender(), battle_threads=1)
    assert "access-control-allow-origin" not in plain.get("/health", headers={"Origin": "https://arena.example"}).headers


def test_logs_mask_texts_at_info(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    from content_arena.service.logs import JsonFormatter

    text = "이 미친놈아 private-words"
    with caplog.at_level(logging.INFO):
        assert client.post("/api/v1/classify", json={"text": text}, headers=READ).status_code == 200
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    access = [json.loads(line) for line in lines if '"/api/v1/classify"' in line]
    assert access and access[0]["n_texts"] == 1 and access[0]["total_chars"] == len(text)
    assert access[0]["status"] == 200 and len(access[0]["text_hashes"][0]) == 12
    assert all("private-words" not in line and "미친놈" not in line for line in lines)
