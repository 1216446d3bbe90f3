"""Where a Prompt's tests send their rendered prompts, and what comes back (checks.Answer).

- `echo`: the prompt itself, for template-only tests.
- `python`: a function of the spec repo, `fn(prompt, settings) -> str` (or a dict with `output`).
- `service`: a Service of this repo, by its published URL and request schema: the prompt goes in its
  text field, the predicted label comes back.
- `openai`: an OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama, TGI).

A target that is down, refuses, times out or answers 429/5xx is retried with exponential backoff;
when it still fails, the call raises Unreachable: the test case counts as an error, not as a failed
assertion. A key (`api_key: ${env:NAME}`) is resolved here, at apply, and never logged or stored.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlspec_prompt.checks import Answer

BACKOFF_S = 0.25  # first retry after this, doubling


class Unreachable(Exception):
    """The target gave no usable answer after its retries: why, without secrets."""


class BadTarget(Exception):
    """The target answered, but not as its kind must (no text field, not a chat completion)."""


Call = Callable[[str], Answer]


def echo(settings: Mapping[str, Any]) -> Call:
    def call(prompt: str) -> Answer:
        return Answer(prompt, 0.0, prompt)
    return call


_LOADED: dict[tuple[str, float], Any] = {}
_LOADING = threading.Lock()


def function(workdir: Path, ref: str) -> Callable[..., Any]:
    """`path.py:name` of the spec repo, imported once per file version (its mtime)."""
    path_text, _, name = ref.rpartition(":")
    path = (workdir / path_text).resolve()
    if not path.is_relative_to(workdir.resolve()):
        raise BadTarget(f"{ref}: the file is outside the spec repo")
    if not path.is_file():
        raise BadTarget(f"{ref}: there is no file {path_text} in the spec repo")
    key = (str(path), path.stat().st_mtime)
    with _LOADING:
        module = _LOADED.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(f"mlspec_prompt_user_{abs(hash(key))}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            except Exception as err:
                raise BadTarget(f"{ref}: importing {path_text} failed: {type(err).__name__}: {err}") from None
            finally:
                sys.path.remove(str(path.parent))
            _LOADED[key] = module
    found = getattr(module, name, None)
    if not callable(found):
        raise BadTarget(f"{ref}: {path_text} has no function `{name}`")
    return found  # type: ignore[no-any-return]


def python(workdir: Path, ref: str, settings: Mapping[str, Any]) -> Call:
    target = function(workdir, ref)

    def call(prompt: str) -> Answer:
        started = time.perf_counter()
        try:
            found = target(prompt, dict(settings))
        except Exception as err:
            raise Unreachable(f"{ref} raised {type(err).__name__}: {err}") from None
        latency = (time.perf_counter() - started) * 1e3
        if isinstance(found, Mapping):
            return Answer(str(found.get("output", "")), latency, dict(found))
        return Answer(str(found), latency, found)
    return call


def _post(url: str, body: Mapping[str, Any], headers: Mapping[str, str], timeout_s: float, retries: int,
          shown: str) -> tuple[Any, float]:
    """POST JSON with retries and backoff; (the decoded answer, milliseconds of the call that answered)."""
    data = json.dumps(body).encode()
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"content-type": "application/json", **headers})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                raw = answer.read()
            latency = (time.perf_counter() - started) * 1e3
        except urllib.error.HTTPError as err:
            if err.code == 429 or err.code >= 500:
                problem = f"{shown} answered {err.code}"
                continue
            detail = err.read()[:300].decode(errors="replace")
            raise BadTarget(f"{shown} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            problem = f"{shown} did not answer ({'timed out' if isinstance(reason, TimeoutError) else reason})"
            continue
        try:
            return json.loads(raw), latency
        except ValueError:
            raise BadTarget(f"{shown} answered something that is not JSON: {raw[:120]!r}") from None
    raise Unreachable(f"{problem}, after {retries + 1} attempt(s)")


def service(url: str, schema: Mapping[str, Any], address: str, timeout_s: float = 30.0, retries: int = 3) -> Call:
    """The Service's text field (the first string property of its request schema) gets the prompt."""
    item = ((schema.get("properties") or {}).get("inputs") or {}).get("items") or {}
    texts = [name for name, p in (item.get("properties") or {}).items() if p.get("type") == "string"]
    if not texts:
        raise BadTarget(f"{address} takes no text: its request schema has no string field "
                        f"({', '.join(item.get('properties') or {}) or 'no fields'})")
    field = texts[0]

    def call(prompt: str) -> Answer:
        found, latency = _post(url.rstrip("/") + "/predict", {"inputs": [{field: prompt}]}, {}, timeout_s, retries,
                               address)
        if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
            raise BadTarget(f"{address} answered {str(found)[:120]}, not a list of predictions")
        first = found[0]
        label = first.get("label")
        return Answer(str(label if label is not None else first.get("value")), latency, dict(first))
    return call


def openai(base_url: str, model: str, api_key: str | None, settings: Mapping[str, Any], timeout_s: float,
           retries: int) -> Call:
    body_settings = {k: v for k, v in settings.items() if v is not None}
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"
    shown = base_url.rstrip("/")  # never with the key

    def call(prompt: str) -> Answer:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], **body_settings}
        found, latency = _post(url, body, headers, timeout_s, retries, shown)
        try:
            text = found["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BadTarget(f"{shown} answered {str(found)[:120]}, not a chat completion") from None
        return Answer(str(text or ""), latency, found)
    return call
