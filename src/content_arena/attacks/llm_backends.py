"""LLM backends for the paraphrase attack: Ollama (``/api/generate`` or ``/api/chat``) and any
OpenAI-compatible server (``/v1/chat/completions``: llama.cpp's ``llama-server``, vLLM, LM Studio ...).

Every backend answers :meth:`LLMBackend.complete` (system prompt, user prompt) with the model's text
and raises :class:`LLMError` (or the HTTP client's timeout/connection error) when it cannot; the
retry policy lives in :class:`~content_arena.attacks.llm.LLMParaphrase`.

:func:`make_backend` picks the backend from ``backend`` or, with ``"auto"``, from the host: a URL whose
path ends in ``/v1`` (``http://127.0.0.1:8080/v1``) or that starts with ``openai+`` is OpenAI-compatible,
``ollama-chat+http://...`` is Ollama's chat endpoint, ``transformers+<directory, hub id or .gguf file>``
runs the model in this process (:class:`TransformersLocal`, no server), anything else Ollama's generate
endpoint.
"""

from __future__ import annotations

import abc
import os
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "BACKENDS",
    "LLMBackend",
    "LLMError",
    "OllamaChat",
    "OllamaGenerate",
    "OpenAICompatible",
    "TransformersLocal",
    "make_backend",
    "resolve_backend",
]

BACKENDS = ("auto", "ollama", "ollama-chat", "openai", "transformers")


class LLMError(RuntimeError):
    """The server answered, but not with a usable completion (HTTP error, malformed JSON)."""


class LLMBackend(abc.ABC):
    name: str = ""

    def __init__(self, host: str, model: str, timeout: float) -> None:
        self.host = host
        self.model = model
        self.timeout = float(timeout)

    @abc.abstractmethod
    def complete(self, system: str, prompt: str, *, temperature: float, seed: int | None = None) -> str:
        """The model's answer to ``prompt`` under ``system`` (raw text, not yet cleaned)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, model={self.model!r})"


def _options(temperature: float, seed: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": temperature}
    if seed is not None:
        options["seed"] = seed
    return options


def _field(response: Any, *path: str) -> Any:
    """``response.a.b`` or ``response["a"]["b"]`` (the ollama client returns pydantic models)."""
    for key in path:
        if response is None:
            return None
        response = response.get(key) if isinstance(response, dict) else getattr(response, key, None)
    return response


class _Ollama(LLMBackend):
    def __init__(self, host: str, model: str, timeout: float) -> None:
        super().__init__(host, model, timeout)
        import ollama  # imported here: the rule strategies should not pay for the HTTP client

        self._client = ollama.Client(host=host, timeout=self.timeout)

    def _call(self, method: str, **kwargs: Any) -> Any:
        import ollama

        try:
            return getattr(self._client, method)(model=self.model, stream=False, **kwargs)
        except ollama.ResponseError as error:
            raise LLMError(f"ollama {method} failed (HTTP {error.status_code}): {error.error}") from error


class OllamaGenerate(_Ollama):
    """Ollama's ``POST /api/generate`` (non-streaming): ``{"response": "..."}``."""

    name = "ollama"

    def complete(self, system: str, prompt: str, *, temperature: float, seed: int | None = None) -> str:
        response = self._call("generate", prompt=prompt, system=system, options=_options(temperature, seed))
        text = _field(response, "response")
        if not isinstance(text, str):
            raise LLMError("ollama generate answered without a 'response' text")
        return text


class OllamaChat(_Ollama):
    """Ollama's ``POST /api/chat`` (non-streaming): ``{"message": {"role": "assistant", "content": "..."}}``."""

    name = "ollama-chat"

    def complete(self, system: str, prompt: str, *, temperature: float, seed: int | None = None) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        response = self._call("chat", messages=messages, options=_options(temperature, seed))
        text = _field(response, "message", "content")
        if not isinstance(text, str):
            raise LLMError("ollama chat answered without message.content")
        return text


class OpenAICompatible(LLMBackend):
    """``POST {base_url}/chat/completions`` of an OpenAI-compatible server, through httpx.

    ``api_key`` (or ``$OPENAI_API_KEY``) is sent as a bearer token when set; local servers need none.
    """

    name = "openai"

    def __init__(
        self, host: str, model: str, timeout: float, *, api_key: str | None = None, max_tokens: int = 256
    ) -> None:
        super().__init__(host, model, timeout)
        import httpx

        base = host.removeprefix("openai+").rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        self.base_url = base
        self.max_tokens = max_tokens
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=base, timeout=self.timeout, headers=headers)

    def complete(self, system: str, prompt: str, *, temperature: float, seed: int | None = None) -> str:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if seed is not None:
            payload["seed"] = seed
        response = self._client.post("/chat/completions", json=payload)
        if response.status_code >= 400:
            raise LLMError(f"chat/completions failed (HTTP {response.status_code}): {response.text[:200]}")
        try:
            data = response.json()
        except ValueError as error:
            raise LLMError("chat/completions answered with invalid JSON") from error
        choices = data.get("choices") if isinstance(data, dict) else None
        text = _field(choices[0], "message", "content") if isinstance(choices, list) and choices else None
        if not isinstance(text, str):
            raise LLMError("chat/completions answered without choices[0].message.content")
        return text

    def close(self) -> None:
        self._client.close()


class TransformersLocal(LLMBackend):
    """A causal LM run in this process with transformers' ``generate``: no server to start.

    ``host`` is the model: a directory, a hub id, or a ``.gguf`` file (dequantised once into
    ``$ARENA_HOME/backbones``, as ``model.base_model`` is). The prompt goes through the model's chat
    template when it has one. The model is loaded once, in float32, and one generation runs at a time
    (a lock): this backend is for small models and tests, not for serving many attackers at once.
    """

    name = "transformers"

    def __init__(self, host: str, model: str, timeout: float, *, max_new_tokens: int = 64) -> None:
        super().__init__(host, model, timeout)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from content_arena.defender.transformer import dtype_argument

        location = host.removeprefix("transformers+")
        if location.lower().endswith(".gguf"):
            from content_arena.training.backbones import dequantize_gguf

            location = str(dequantize_gguf(location, Path(os.environ.get("ARENA_HOME", ".arena")) / "backbones"))
        self.max_new_tokens = max_new_tokens
        self._tokenizer = AutoTokenizer.from_pretrained(location)
        self._model = AutoModelForCausalLM.from_pretrained(location, **dtype_argument(torch.float32)).eval()
        self._lock = threading.Lock()

    def _prompt_ids(self, system: str, prompt: str):
        if getattr(self._tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
            encoded = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
            return encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return self._tokenizer(f"{system}\n\n{prompt}\n", return_tensors="pt")["input_ids"]

    def complete(self, system: str, prompt: str, *, temperature: float, seed: int | None = None) -> str:
        import torch

        ids = self._prompt_ids(system, prompt)
        sampling: dict[str, Any] = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self._model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                       pad_token_id=pad, **sampling)
        return self._tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def resolve_backend(host: str, backend: str = "auto") -> tuple[str, str]:
    """``(backend name, host without a scheme prefix)`` for ``host`` (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown LLM backend {backend!r}; known: {', '.join(BACKENDS)}")
    for prefix, name in (("openai+", "openai"), ("ollama-chat+", "ollama-chat"), ("ollama+", "ollama"),
                         ("transformers+", "transformers")):
        if host.startswith(prefix):
            return (name if backend == "auto" else backend), host.removeprefix(prefix)
    if backend != "auto":
        return backend, host
    return ("openai" if host.rstrip("/").endswith("/v1") else "ollama"), host


def make_backend(
    host: str, model: str, timeout: float = 30.0, *, backend: str = "auto", api_key: str | None = None
) -> LLMBackend:
    """The backend for ``host`` (``backend``: ``auto``, ``ollama``, ``ollama-chat``, ``openai`` or ``transformers``)."""
    name, url = resolve_backend(host, backend)
    if name == "transformers":
        return TransformersLocal(url, model, timeout)
    if name == "openai":
        return OpenAICompatible(url, model, timeout, api_key=api_key)
    if name == "ollama-chat":
        return OllamaChat(url, model, timeout)
    return OllamaGenerate(url, model, timeout)
