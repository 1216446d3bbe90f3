"""The peer a team would write by hand: a BentoML 1.4 service around the same ONNX graph and tokenizer
as the bundled Service, BentoML's defaults otherwise, as in BentoML's own examples. Batching from
the environment (PEER_BATCH=1, PEER_MAX_LATENCY_MS), padding to max_length as in training unless
PEER_PAD=longest, the model's directory from PEER_MODEL_DIR.

    bentoml serve handwritten_bento:Handwritten --host 127.0.0.1 --port N
"""

import json
import os
from pathlib import Path
from typing import Any

import bentoml

MODEL = Path(os.environ.get("PEER_MODEL_DIR", "."))
BATCH = os.environ.get("PEER_BATCH") == "1"
MAX_LATENCY_MS = int(os.environ.get("PEER_MAX_LATENCY_MS", "1000"))
PAD_TO_LONGEST = os.environ.get("PEER_PAD") == "longest"  # as the generated service pads


@bentoml.service(name="handwritten")
class Handwritten:
    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.manifest = json.loads((MODEL / "mlspec-model.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(MODEL / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.manifest["max_length"]))
        length = None if PAD_TO_LONGEST else int(self.manifest["max_length"])
        self.tokenizer.enable_padding(length=length, pad_token="[PAD]", pad_id=self.tokenizer.token_to_id("[PAD]") or 0)

    @bentoml.api(route="/predict", batchable=BATCH, batch_dim=0, max_batch_size=32, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import numpy as np

        found = self.tokenizer.encode_batch([str(item.get("text") or "") for item in inputs])
        feeds = {"input_ids": np.array([e.ids for e in found], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in found], dtype=np.int64)}
        logits = self.session.run(None, feeds)[0]
        scores = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        classes = self.manifest["classes"]
        return [{"label": classes[int(s.argmax())], "value": float(s.max())} for s in scores]
