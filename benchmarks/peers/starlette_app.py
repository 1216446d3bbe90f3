"""The peer with no serving framework: the same ONNX graph and tokenizer in a Starlette app (what
FastAPI is built on) under uvicorn, one request per forward pass.

    PEER_MODEL_DIR=... uvicorn starlette_app:app --host 127.0.0.1 --port N
"""

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tokenizers import Tokenizer

MODEL = Path(os.environ.get("PEER_MODEL_DIR", "."))
MANIFEST = json.loads((MODEL / "mlspec-model.json").read_text())
options = ort.SessionOptions()
options.intra_op_num_threads = 1
SESSION = ort.InferenceSession(str(MODEL / "model.onnx"), options, providers=["CPUExecutionProvider"])
TOKENIZER = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
TOKENIZER.enable_truncation(int(MANIFEST["max_length"]))
TOKENIZER.enable_padding(length=int(MANIFEST["max_length"]), pad_token="[PAD]",
                         pad_id=TOKENIZER.token_to_id("[PAD]") or 0)


async def predict(request: Request) -> JSONResponse:
    inputs = (await request.json())["inputs"]
    found = TOKENIZER.encode_batch([str(item.get("text") or "") for item in inputs])
    feeds = {"input_ids": np.array([e.ids for e in found], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in found], dtype=np.int64)}
    logits = SESSION.run(None, feeds)[0]
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    return JSONResponse([{"label": MANIFEST["classes"][int(s.argmax())], "value": float(s.max())} for s in scores])


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
