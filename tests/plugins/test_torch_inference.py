"""A stored Model back as something to run: the encoding a Service puts in front of an ONNX graph (the
`tokenizers` library, no transformers, no torch) gives the ids training gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("transformers")

from mlspec_torch.architectures import train_tokenizer
from mlspec_torch.inference import MANIFEST, NotLoadable, encoder, load


def test_serving_tokenization_is_trainings(tmp_path: Path) -> None:
    texts = ["a great product", "terrible, would not buy", "Ünïcode façade, naïve!", "", "word " * 80]
    tokenizer = train_tokenizer(texts * 3, 200, max_length=16)
    tokenizer.save_pretrained(tmp_path)
    trained = tokenizer(texts, padding="max_length", truncation=True, max_length=16, return_tensors="np")
    encode = encoder(tmp_path, {"task": "text-classification", "max_length": 16, "features": ["text"]})
    served = encode(pa.table({"text": [*texts[:3], None, texts[4]]}))  # a missing text is the empty one
    assert np.array_equal(served["input_ids"], trained["input_ids"])
    assert np.array_equal(served["attention_mask"], trained["attention_mask"])
    assert served["input_ids"].dtype == np.int64 and served["input_ids"].shape == (5, 16)


def test_a_service_pads_to_the_longest_text_as_transformers_does(tmp_path: Path) -> None:
    texts = ["a great product", "terrible, would not buy", "ok"]
    tokenizer = train_tokenizer(texts * 3, 200, max_length=16)
    tokenizer.save_pretrained(tmp_path)
    trained = tokenizer(texts, padding="longest", truncation=True, max_length=16, return_tensors="np")
    encode = encoder(tmp_path, {"task": "text-classification", "max_length": 16, "features": ["text"]}, pad="longest")
    served = encode(pa.table({"text": texts}))
    assert served["input_ids"].shape[1] < 16
    assert np.array_equal(served["input_ids"], trained["input_ids"])
    assert np.array_equal(served["attention_mask"], trained["attention_mask"])
    long = encode(pa.table({"text": ["word " * 80]}))  # still truncated at max_length
    assert long["input_ids"].shape == (1, 16)


def test_files_without_a_manifest_say_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(NotLoadable, match=f"its files have no {MANIFEST} .* mlspec apply --replace Model/old"):
        load(tmp_path, address="Model/old")
