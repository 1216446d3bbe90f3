"""A Prompt tested against an OpenAI-compatible chat completions endpoint serving a real generative
model: a tiny GPT-2 built from a config and trained for a few seconds here to answer `=> positive` or
`=> negative`, behind a loopback HTTP server this test starts (what vLLM, Ollama and TGI expose). No
model hub, no network. The server also refuses the first requests (503) to show the retries, and
checks the API key, which must never reach state."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.cli import Result  # noqa: E402

pytestmark = pytest.mark.slow
Mlspec = Callable[..., Result]
KEY = "sk-tiny-model-key-0042"
EXAMPLES = [(text, "positive") for text in ("great product", "love it", "works great", "excellent , love it",
                                             "great value", "really love this")] + \
           [(text, "negative") for text in ("broke fast", "awful", "it broke", "terrible , broke",
                                             "awful value", "really awful thing")]
WORDS = sorted({w for text, label in EXAMPLES for w in f"{text} => {label} .".split()})


class Words:
    """A word tokenizer over the examples' words: enough for a model that must learn two answers."""

    def __init__(self) -> None:
        self.ids = {w: i + 2 for i, w in enumerate(WORDS)}  # 0: end of text, 1: a word it never saw
        self.words = {i: w for w, i in self.ids.items()}

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(w, 1) for w in text.lower().replace(",", " , ").split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words.get(i, "") for i in ids if i > 1)


def train() -> Any:
    torch.manual_seed(0)
    words = Words()
    config = transformers.GPT2Config(vocab_size=len(WORDS) + 2, n_positions=96, n_embd=64, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    rows = [[*words.encode(f"{text} => {label} ."), 0] for text, label in EXAMPLES]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(100):
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, words


class Server:
    def __init__(self, model: Any, chars: Words, refuse_first: int) -> None:
        self.model, self.chars, self.refuse, self.requests = model, chars, refuse_first, 0
        self.lock = threading.Lock()

    def complete(self, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"].strip() + " =>"
        ids = torch.tensor([self.chars.encode(prompt)])
        with torch.no_grad():
            out = self.model.generate(ids, max_new_tokens=int(body.get("max_tokens") or 10), do_sample=False,
                                      pad_token_id=0, eos_token_id=0)
        text = self.chars.decode(out[0, ids.shape[1]:].tolist())
        return text.split(" .")[0].strip()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, Server]]:
    model, chars = train()
    server = Server(model, chars, refuse_first=2)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with server.lock:
                server.requests += 1
                refused = server.requests <= server.refuse
            if refused:
                return self._send(503, {"error": "loading"})
            if self.headers.get("authorization") != f"Bearer {KEY}":
                return self._send(401, {"error": "bad key"})
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": self.path})
            with server.lock:  # one generation at a time, as a single-GPU server would
                text = server.complete(body)
            self._send(200, {"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}/v1", server
    http.shutdown()
    http.server_close()


SPEC = """apiVersion: mlspec/v1
kind: Prompt
metadata: {{name: sentiment-chat}}
spec:
  template: "{{{{ review }}}}"
  variables:
    review: {{type: string}}
  settings: {{temperature: 0, max_tokens: 10}}
  target:
    openai: {{base_url: "{url}", model: tiny-gpt2, api_key: "${{env:TINY_KEY}}", retries: 3}}
    concurrency: 4
  tests:
    - name: positive
      vars: {{review: "love it, great"}}
      assert: [{{type: icontains, value: positive}}, {{type: not-contains, value: negative}}]
    - name: negative
      vars: {{review: "awful, it broke"}}
      assert: [{{type: starts-with, value: negative}}]
    - name: one-word
      vars: {{review: "great value"}}
      assert: [{{type: regex, value: "^(positive|negative)$"}}, {{type: latency, threshold: 5000}}]
      repeat: 5
  gate: {{min_pass_rate: 1.0}}
  aliases: [production]
"""


def test_a_prompt_is_tested_against_a_real_model_behind_an_openai_compatible_endpoint(
        endpoint: tuple[str, Server], mlspec: Mlspec, project: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, server = endpoint
    monkeypatch.setenv("TINY_KEY", KEY)
    root = project({"specs/chat.yaml": SPEC.format(url=url)})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "3 of 3 case(s) passed (100%, gate 100%), 7 run(s)" in applied.err, applied.err
    assert server.requests == 2 + 7  # the two refusals were retried
    state = (root / ".mlspec").rglob("*")
    assert not any(KEY in p.read_text(errors="ignore") for p in state if p.is_file()), "the key reached .mlspec/"
    assert KEY not in applied.output

    from mlspec import prompts

    prompts.clear_cache()
    assert prompts.render("sentiment-chat", root=root, review="love it").text == "love it"


def test_a_wrong_key_fails_the_step_with_the_endpoints_answer_and_no_key(
        endpoint: tuple[str, Server], mlspec: Mlspec, project: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, server = endpoint
    monkeypatch.setenv("TINY_KEY", "sk-wrong-key-9999")
    with server.lock:
        server.refuse = 0
    root = project({"specs/chat.yaml": SPEC.format(url=url)})
    applied = mlspec(root, "apply", "-y")
    assert applied.code != 0
    assert f"{url.rstrip('/')} answered 401" in applied.err and "sk-wrong-key-9999" not in applied.output
    assert os.environ["TINY_KEY"] == "sk-wrong-key-9999"
