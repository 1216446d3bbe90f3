"""The built-in architectures: built from configs and data alone (no hub), and able to learn."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlspec_torch.architectures import mlp, text_classifier, train_tokenizer  # noqa: E402

TEXTS = ["great product works perfectly", "terrible it broke after a week", "love it would buy again",
         "waste of money stopped working"] * 8
LABELS = [1, 0, 1, 0] * 8


def test_a_tokenizer_learnt_from_the_data_is_deterministic_and_saves(tmp_path: Path) -> None:
    first, second = train_tokenizer(TEXTS, 200), train_tokenizer(TEXTS, 200)
    assert first.get_vocab() == second.get_vocab()
    encoded = first("great product", padding="max_length", max_length=8, truncation=True)
    assert encoded["input_ids"][0] == first.cls_token_id and len(encoded["input_ids"]) == 8
    first.save_pretrained(tmp_path)
    from transformers import PreTrainedTokenizerFast

    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert again("great product")["input_ids"] == first("great product")["input_ids"]


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta"])
def test_a_tiny_text_classifier_learns(family: str) -> None:
    torch.manual_seed(0)
    tokenizer = train_tokenizer(TEXTS, 200)
    config = {"bert": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
              "distilbert": {"dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64},
              "roberta": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                          "intermediate_size": 64}}[family]
    model = text_classifier(family, config, len(tokenizer), 2, max_length=16)
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    labels = torch.tensor(LABELS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_a_config_that_does_not_fit_the_family_is_named() -> None:
    with pytest.raises(ValueError, match="does not fit BertConfig"):
        text_classifier("bert", {"hidden_size": 30, "num_attention_heads": 4}, 100, 2)
    with pytest.raises(ValueError, match="family `mlp` is not a text architecture"):
        text_classifier("mlp", {}, 100, 2)


def test_the_mlp_has_the_asked_shape() -> None:
    net = mlp(10, 3, [32, 16], dropout=0.1)
    assert net(torch.zeros(4, 10)).shape == (4, 3)
