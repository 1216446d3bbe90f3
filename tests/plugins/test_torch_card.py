"""The model card: Hugging Face metadata a hub and its tools can read, and the lineage, from facts."""

from __future__ import annotations

from mlspec_torch.card import CardFacts, render
from ruamel.yaml import YAML

FACTS = CardFacts(
    address="Model/sentiment", task="text-classification", dataset="Dataset/reviews", dataset_version="ab" * 32,
    split_digests={"train": "cd" * 32, "test": "ef" * 32}, metrics={"f1": 0.8312345678, "accuracy": 0.84},
    gates=[("f1 >= 0.75", True, "f1 0.8312 >= 0.7500: passed by 0.0812")], fingerprint="12" * 32,
    hyperparameters={"learning_rate": 0.0005, "epochs": 2, "max_steps": None}, hardware="cpu (2 threads)",
    seconds=41.2, library="transformers", license="apache-2.0", commit="34" * 20,
)


def test_the_front_matter_is_hugging_face_model_card_metadata() -> None:
    text = render(FACTS)
    assert text.startswith("---\n")
    metadata = YAML(typ="safe").load(text.split("---\n")[1])
    assert metadata["library_name"] == "transformers" and metadata["license"] == "apache-2.0"
    [result] = metadata["model-index"][0]["results"]
    assert result["dataset"] == {"name": "Dataset/reviews", "type": "mlspec-dataset", "revision": "ab" * 32}
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"accuracy": 0.84, "f1": 0.831235}
    assert "base_model" not in metadata  # no fact, no field


def test_the_body_holds_the_lineage_and_the_gates() -> None:
    text = render(FACTS)
    assert "| spec fingerprint | `" + "12" * 32 + "` |" in text
    assert "| split `train` | sha256 `" + "cd" * 32 + "` |" in text
    assert "| `f1 >= 0.75` | passed: f1 0.8312 >= 0.7500: passed by 0.0812 |" in text
    assert "max_steps" not in text and "| epochs | 2 |" in text
