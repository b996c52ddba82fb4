"""LLM paraphrase backends against a local HTTP server speaking each wire format.

The fake server answers Ollama's non-streaming ``POST /api/generate`` and ``POST /api/chat`` and the
OpenAI ``POST /v1/chat/completions``; each test scripts its replies (text, HTTP status, a delay past
the client timeout, or broken JSON) and inspects the requests it received.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from content_arena.attacks import LLMParaphrase, get_strategy
from content_arena.attacks.llm import PROMPT_EN, PROMPT_KO, build_prompt, rejection_reason
from content_arena.attacks.llm_backends import (
    LLMError,
    OllamaChat,
    OllamaGenerate,
    OpenAICompatible,
    make_backend,
    resolve_backend,
)

try:  # registered in pyproject as "llm_local"; until then the test still runs by name
    llm_local = pytest.mark.llm_local
except BaseException:  # noqa: BLE001 - pytest.fail under --strict-markers raises an OutcomeException
    llm_local = pytest.mark.skip(reason="the llm_local marker is not registered in pyproject.toml")


class Reply:
    """A scripted answer: ``text``, an HTTP ``status``, a ``delay`` (s) before answering, or ``raw`` bytes."""

    def __init__(self, text: str = "", *, status: int = 200, delay: float = 0.0, raw: bytes | None = None) -> None:
        self.text, self.status, self.delay, self.raw = text, status, delay, raw


class _Server(BaseHTTPRequestHandler):
    replies: ClassVar[list[Reply]] = []
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        type(self).requests.append({"path": self.path, "authorization": self.headers.get("Authorization"), **body})
        reply = type(self).replies.pop(0) if type(self).replies else Reply("unused")
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw is not None:
            payload = reply.raw
        elif reply.status >= 400:
            payload = json.dumps({"error": "boom"}).encode()
        elif self.path == "/api/generate":
            payload = json.dumps({"model": body.get("model"), "created_at": "2024-01-01T00:00:00Z",
                                  "response": reply.text, "done": True}).encode()
        elif self.path == "/api/chat":
            payload = json.dumps({"model": body.get("model"), "created_at": "2024-01-01T00:00:00Z",
                                  "message": {"role": "assistant", "content": reply.text}, "done": True}).encode()
        elif self.path == "/v1/chat/completions":
            payload = json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()
        else:
            reply.status, payload = 404, b'{"error": "not found"}'
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _Server.replies, _Server.requests = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- backend selection


def test_backend_is_chosen_from_the_host() -> None:
    assert resolve_backend("http://127.0.0.1:11434") == ("ollama", "http://127.0.0.1:11434")
    assert resolve_backend("http://127.0.0.1:8080/v1") == ("openai", "http://127.0.0.1:8080/v1")
    assert resolve_backend("http://127.0.0.1:8080/v1/") == ("openai", "http://127.0.0.1:8080/v1/")
    assert resolve_backend("openai+http://10.0.0.5:8000") == ("openai", "http://10.0.0.5:8000")
    assert resolve_backend("ollama-chat+http://h:11434") == ("ollama-chat", "http://h:11434")
    assert resolve_backend("http://h:11434", "ollama-chat") == ("ollama-chat", "http://h:11434")
    with pytest.raises(ValueError, match="unknown LLM backend"):
        resolve_backend("http://h", "mystery")
    assert isinstance(make_backend("http://h:1/v1", "m"), OpenAICompatible)
    assert isinstance(make_backend("http://h:1", "m", backend="ollama-chat"), OllamaChat)
    assert isinstance(make_backend("http://h:1", "m"), OllamaGenerate)
    assert make_backend("openai+http://h:1", "m").base_url == "http://h:1/v1"


def test_prompts_follow_the_language_of_the_comment() -> None:
    korean, english = build_prompt("넌 진짜 병신 같아"), build_prompt("you are an idiot")
    assert korean.startswith(PROMPT_KO[:20]) and "넌 진짜 병신 같아" in korean and "한국어" in korean
    assert english.startswith(PROMPT_EN[:20]) and "you are an idiot" in english and "English" in english


# --------------------------------------------------------------------------- each wire format


def test_ollama_generate_wire_format(server: str) -> None:
    _Server.replies = [Reply("넌 진짜 ㅂㅅ 같음")]
    strategy = get_strategy("llm", llm={"host": server, "model": "tiny", "timeout": 5, "retries": 0, "temperature": 0.3})
    assert strategy.attack("넌 진짜 병신 같아", seed=1) == "넌 진짜 ㅂㅅ 같음"
    request = _Server.requests[0]
    assert request["path"] == "/api/generate" and request["model"] == "tiny" and request["stream"] is False
    assert request["options"]["temperature"] == pytest.approx(0.3) and isinstance(request["options"]["seed"], int)
    assert "넌 진짜 병신 같아" in request["prompt"] and "사람이 읽으면" in request["prompt"] and request["system"]


def test_ollama_chat_wire_format(server: str) -> None:
    _Server.replies = [Reply("ur a fkn idi0t")]
    strategy = LLMParaphrase(host=server, model="tiny", timeout=5, backend="ollama-chat")
    assert strategy.attack("you are a fucking idiot") == "ur a fkn idi0t"
    request = _Server.requests[0]
    assert request["path"] == "/api/chat" and request["stream"] is False
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "you are a fucking idiot" in request["messages"][1]["content"]
    assert request["options"]["temperature"] == pytest.approx(0.9)


def test_openai_compatible_wire_format(server: str) -> None:
    _Server.replies = [Reply("Rewritten: 'u r such a m0ron'")]
    strategy = get_strategy(
        "llm", llm={"host": f"{server}/v1", "model": "qwen2.5-0.5b", "timeout": 5, "api_key": "sk-local"}
    )
    assert strategy.backend.name == "openai"
    assert strategy.attack("you are such a moron", seed=2) == "u r such a m0ron"
    request = _Server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "qwen2.5-0.5b"
    assert request["stream"] is False and request["max_tokens"] > 0 and isinstance(request["seed"], int)
    assert request["messages"][0]["role"] == "system" and "you are such a moron" in request["messages"][1]["content"]
    assert request["authorization"] == "Bearer sk-local"


def test_openai_without_key_sends_no_authorization(server: str) -> None:
    _Server.replies = [Reply("idi0t")]
    backend = OpenAICompatible(server, "m", 5)
    assert backend.complete("sys", "prompt", temperature=0.5) == "idi0t"
    assert _Server.requests[0]["authorization"] is None and "seed" not in _Server.requests[0]
    backend.close()


# --------------------------------------------------------------------------- errors, timeouts, retries


@pytest.mark.parametrize("backend", ["ollama", "ollama-chat", "openai"])
def test_errors_and_timeouts_are_retried(server: str, backend: str) -> None:
    host = f"{server}/v1" if backend == "openai" else server
    _Server.replies = [Reply(status=500), Reply(status=429), Reply("late", delay=1.5), Reply("닥쳐 ㅂㅅ아")]
    strategy = LLMParaphrase(host=host, model="m", timeout=0.5, retries=3, backend=backend, backoff=0.0)
    assert strategy.attack("닥쳐 병신아") == "닥쳐 ㅂㅅ아"
    assert strategy.stats["errors"] == 3 and strategy.stats["accepted"] == 1 and strategy.stats["rejected"] == 0
    assert len(_Server.requests) == 4
    assert len({(r.get("options") or r)["seed"] for r in _Server.requests}) == 4  # a new sampling seed per attempt


@pytest.mark.parametrize(
    ("host_suffix", "backend", "raw"),
    [("/v1", "openai", b"not json"), ("/v1", "openai", b'{"choices": []}'), ("", "ollama-chat", b'{"done": true}'),
     ("", "ollama", b"<html>oops</html>")],
)
def test_malformed_answers_count_as_errors(server: str, host_suffix: str, backend: str, raw: bytes) -> None:
    _Server.replies = [Reply(raw=raw), Reply("fvck u")]
    strategy = LLMParaphrase(host=server + host_suffix, timeout=5, retries=1, backend=backend, backoff=0.0)
    assert strategy.attack("fuck you") == "fvck u"
    assert strategy.stats["errors"] == 1 and strategy.stats["accepted"] == 1


def test_openai_errors_raise_llm_error(server: str) -> None:
    _Server.replies = [Reply(status=503), Reply(raw=b'{"choices": [{"message": {}}]}')]
    backend = OpenAICompatible(server, "m", 5)
    with pytest.raises(LLMError, match="HTTP 503"):
        backend.complete("s", "p", temperature=0.1)
    with pytest.raises(LLMError, match="choices"):
        backend.complete("s", "p", temperature=0.1)


def test_invalid_outputs_are_rejected_and_counted(server: str) -> None:
    _Server.replies = [
        Reply("I'm sorry, I can't help with that."),
        Reply("you are a fucking idiot"),
        Reply("x"),
        Reply("Rewrite the comment so it is ur a fkn idiot"),
        Reply("y" * 400),
        Reply(""),
    ]
    strategy = LLMParaphrase(host=f"{server}/v1", timeout=5, retries=5, backoff=0.0)
    assert strategy.attack("you are a fucking idiot") == "you are a fucking idiot"
    assert {k: strategy.stats[k] for k in ("refusal", "identical", "too_short", "prompt_echo", "too_long", "empty")} == {
        "refusal": 1, "identical": 1, "too_short": 1, "prompt_echo": 1, "too_long": 1, "empty": 1,
    }
    assert strategy.stats["rejected"] == 1 and strategy.stats["accepted"] == 0 and strategy.stats["calls"] == 1


def test_unreachable_server_keeps_the_original() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for host in (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"):
        strategy = LLMParaphrase(host=host, timeout=1, retries=1, backoff=0.0)
        assert strategy.attack("꺼져 병신아") == "꺼져 병신아"
        assert strategy.stats["errors"] == 2 and strategy.stats["rejected"] == 1


def test_rejection_reasons() -> None:
    assert rejection_reason("you are a fucking idiot", "u") == "too_short"
    assert rejection_reason("ㅂㅅ", "ㅂ") is None  # short comments may shrink
    assert rejection_reason("you idiot", "Rewrite the comment so that...") == "prompt_echo"
    assert rejection_reason("넌 진짜 병신 같아", "넌 진짜 ㅂㅅ 같음") is None
    # An English comment answered in another script, or kana anywhere, is not a paraphrase.
    assert rejection_reason("go to hell you piece of shit", "**스틴**, **백새단** is a light bulb") == "wrong_language"
    assert rejection_reason("you idiot", "あなたはばかです") == "wrong_language"
    assert rejection_reason("넌 진짜 병신 같아", "ばか") == "wrong_language"
    # A Korean comment may come back romanised: that is an evasion the attacker wants.
    assert rejection_reason("넌 진짜 병신 같아", "neo jinjja byeongsin gata") is None


# --------------------------------------------------------------------------- a real local model (optional)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@llm_local
def test_llama_cpp_server_paraphrases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Runs llama-cpp-python's OpenAI-compatible server on ``$ARENA_TEST_GGUF`` and paraphrases through it."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
    pytest.importorskip("uvicorn", reason="llama-cpp-python's server extra is not installed")
    gguf = os.environ.get("ARENA_TEST_GGUF")
    if not gguf or not Path(gguf).is_file():
        pytest.skip("set ARENA_TEST_GGUF to a local .gguf model file to run the llama.cpp test")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    port = _free_port()
    log = (tmp_path / "llama.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "1024"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {(tmp_path / 'llama.log').read_text()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        strategy = LLMParaphrase(host=f"http://127.0.0.1:{port}/v1", model=Path(gguf).stem, timeout=120, retries=2)
        texts = ["you are a fucking idiot", "넌 진짜 병신 같아"]
        variants = [strategy.attack(text, seed=1) for text in texts]
        assert strategy.stats["calls"] == 2 and strategy.stats["errors"] == 0
        assert all(isinstance(v, str) and v for v in variants)
        assert strategy.stats["accepted"] + strategy.stats["rejected"] == 2
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(tmp_path, ignore_errors=True)
