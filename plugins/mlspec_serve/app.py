"""What runs inside the BentoML server: the service class that `service.py` (generated) defines.

The generated module is two lines; everything else is here, read from `mlspec-service.json` beside it:
the request schema (typed from the Model's features), the model (an ONNX graph on ONNX Runtime, or the
torch module), the batching settings, and the request log. Kept out of generated code so that what
runs is reviewed, typed and tested like the rest of mlspec, and a new mlspec fixes every service.

Requests are checked before BentoML sees them (an ASGI middleware): a malformed body is a 422 that names
the field, a body over the size limit a 413, never a 500 with a traceback. The API is batchable: BentoML
gathers concurrent requests into one forward pass, up to `max_batch_size`.
"""

import json
import os
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

CONFIG = "mlspec-service.json"

# What BentoML does per request that an mlspec Service does not need, each measured on this model at 32
# concurrent requests (benchmarks/serve.py): the access log line (mlspec keeps its own sampled request log,
# and BentoML's grew the backend's log file by a line per request, unrotated) and an OpenTelemetry span
# for /predict (nothing exports them unless tracing is configured): 460 -> 800 req/s together. The
# response's media type is declared (JSON) above: left to BentoML, it derives it from the output model's
# JSON schema, rebuilt on every response (a third of the server's time at one request in flight).
LEAN: dict[str, Any] = {"logging": {"access": {"enabled": False}}, "tracing": {"excluded_urls": ["/predict"]}}


def service(module_file: str) -> Any:
    """The BentoML service class for the generated module at `module_file`."""
    import bentoml
    from bentoml.validators import ContentType

    from mlspec_serve.schema import prediction_model, request_model

    JSON = ContentType("application/json")

    config = json.loads((Path(module_file).parent / CONFIG).read_text())
    Request = request_model(config["features"])
    Prediction = prediction_model()
    batching = config["batching"]

    @bentoml.service(name=config["name"], traffic={"timeout": config["timeout_s"]},
                     workers=int(config.get("workers") or 1), **LEAN)
    class Service:
        def __init__(self) -> None:
            self.predictor = Predictor(config)

        @bentoml.api(route="/predict", batchable=batching["enabled"], batch_dim=0,  # type: ignore[untyped-decorator]
                     max_batch_size=max(2, batching["max_batch_size"]), max_latency_ms=shed_after_ms(config))
        def predict(self, inputs: list[Request]) -> Annotated[list[Prediction], JSON]:  # type: ignore[valid-type]
            rows = [item.model_dump() for item in inputs]  # type: ignore[attr-defined]
            return [Prediction(**p) for p in self.predictor.predict(rows)]

    made: Any = Service  # a bentoml Service object (the decorator's), which mypy sees as the class
    made.add_asgi_middleware(Checked, schema=Request, limit=int(config["max_body_bytes"]))
    return made


def shed_after_ms(config: Mapping[str, Any]) -> int:
    """BentoML's `max_latency_ms` is also when its batcher sheds load: a request it expects to wait longer
    gets a 503 "process is overloaded" (36% of requests at 32 concurrent with 20 ms, measured). A client
    of an mlspec Service gets an answer or a timeout, never a shed request: the batcher may wait up to the
    request timeout, and the spec's `max_latency_ms` only ever lowers nothing below it."""
    return max(int(config["batching"]["max_latency_ms"]), int(config["timeout_s"]) * 1000)


class Predictor:
    """The model behind the API: rows (dicts of features) in, labels and scores out."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        from mlspec_torch.inference import encoder

        self.config = config
        directory = Path(model_path(config))
        self.data = json.loads((directory / "mlspec-model.json").read_text())
        self.classes = list(self.data.get("classes") or ())
        self.features = list(self.data.get("features") or ())
        self.encode = encoder(directory, self.data, pad="longest")
        if config["runtime"] == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            # One thread per forward pass, no busy-waiting: the server's event loop and BentoML's workers
            # need the same cores, and a batch is what makes a forward pass big (measured: spinning intra-op
            # threads halve the throughput on 2 cores).
            options.intra_op_num_threads = int(config.get("threads") or 1)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            available = ort.get_available_providers()
            chosen = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
            session = ort.InferenceSession(str(directory / config["entry"]), options, providers=chosen)
            names = [i.name for i in session.get_inputs()]
            self.forward: Any = lambda feeds: session.run(None, {n: feeds[n] for n in names})[0]
        else:
            from mlspec_torch.inference import load

            stored = load(directory)
            self.forward = stored.run
        self.log = RequestLog(config.get("request_log") or {}, config)
        self.counted = _counter()

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import numpy as np
        import pyarrow as pa

        table = pa.table({name: [row.get(name) for row in rows] for name in self.features})
        outputs = np.asarray(self.forward(self.encode(table)), dtype=np.float32)
        found: list[dict[str, Any]]
        if not self.classes:  # a regression: one value per row
            found = [{"label": None, "value": float(v), "scores": {}} for v in outputs.reshape(len(rows), -1)[:, 0]]
        else:
            shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
            found = [{"label": self.classes[int(s.argmax())], "value": float(s.max()),
                      "scores": {c: round(float(x), 6) for c, x in zip(self.classes, s, strict=True)}} for s in scores]
        for item in found:
            item["version"] = self.config["version"]
            self.counted.labels(address=self.config["address"], version=self.config["version"],
                                label=str(item["label"])).inc()
        self.log.write(rows, found)
        return found


def _counter() -> Any:
    """`mlspec_predictions_total{address, version, label}` on the server's /metrics, beside BentoML's own:
    what a dashboard or an alert (the Monitor kind's rules) counts per version and class."""
    import bentoml

    global _COUNTER
    if _COUNTER is None:
        _COUNTER = bentoml.metrics.Counter(name="mlspec_predictions", documentation="predictions answered, by mlspec "
                                           "Service, model version and predicted class",
                                           labelnames=["address", "version", "label"])
    return _COUNTER


_COUNTER: Any = None


def model_path(config: Mapping[str, Any]) -> str:
    """The model's directory in the BentoML model store (inside the repo's .mlspec/, by BENTOML_HOME)."""
    import bentoml

    return str(bentoml.models.get(config["model_tag"]).path)


class RequestLog:
    """Sampled requests and predictions as JSON lines, rotated by size: what the Monitor kind reads.

    Only the Model's features are written (PII columns never reach a Model's features: validate refuses
    them), with the version that answered. Writes are appends of whole lines under a lock."""

    def __init__(self, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        self.path = Path(settings["path"]) if settings.get("path") else None
        self.sample = float(settings.get("sample", 1.0))
        self.max_bytes = int(settings.get("max_bytes", 64 << 20))
        self.keep = int(settings.get("keep", 3))
        self.address = config["address"]
        self.lock = threading.Lock()
        self.random = random.Random(os.getpid())

    def write(self, rows: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
        if self.path is None:
            return
        chosen = [(r, f) for r, f in zip(rows, found, strict=True) if self.random.random() < self.sample]
        if not chosen:
            return
        now = time.time()
        lines = "".join(json.dumps({"ts": now, "service": self.address, "version": f["version"], "features": r,
                                    "prediction": f["label"] if f["label"] is not None else f["value"],
                                    "score": f["value"]}, default=str) + "\n" for r, f in chosen)
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size + len(lines) > self.max_bytes:
                self._rotate()
            with open(self.path, "a", encoding="utf-8") as sink:
                sink.write(lines)

    def _rotate(self) -> None:
        assert self.path is not None
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))


class Checked:
    """ASGI middleware: POST /predict bodies validated against the request schema before BentoML parses
    them, so a client learns which field is wrong (422) and a huge body is refused unread (413)."""

    def __init__(self, app: Any, schema: Any, limit: int) -> None:
        self.app, self.schema, self.limit = app, schema, limit

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != "/predict":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _answer(send, 413, {"error": f"the body is {int(declared):,} bytes; the limit is {self.limit:,}"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _answer(send, 413, {"error": f"the body is over the limit of {self.limit:,} bytes"})
                return
        problem = check(body, self.schema)
        if problem is not None:
            await _answer(send, 422, problem)
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def check(body: bytes, schema: Any) -> dict[str, Any] | None:
    """None when `body` is `{"inputs": [<request>, ...]}`; else the 422's body, naming the field."""
    from pydantic import ValidationError

    try:
        data = json.loads(body or b"null")
    except ValueError as err:
        return {"error": f"the body is not JSON: {err}", "field": None}
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
        return {"error": 'the body must be {"inputs": [ ... ]}, a list of requests', "field": "inputs"}
    if not data["inputs"]:
        return {"error": "inputs is empty: send at least one request", "field": "inputs"}
    for i, item in enumerate(data["inputs"]):
        try:
            schema.model_validate(item)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(["inputs", str(i), *(str(p) for p in first["loc"])])
            return {"error": f"{field}: {first['msg']}", "field": field,
                    "errors": [{"field": ".".join(["inputs", str(i), *(str(p) for p in e["loc"])]), "message": e["msg"]}
                               for e in err.errors()[:10]]}
    return None


async def _answer(send: Any, status: int, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
