"""The built-in architectures: a torch MLP for tables, and BERT-style encoders built from a config
with a WordPiece tokenizer trained on the train split, so nothing is ever downloaded.

A tokenizer trained here is a function of the train split's texts and the vocabulary size only, so
the same data gives the same tokenizer (and the same token ids) on any machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
FAMILIES = ("bert", "distilbert", "roberta")


def mlp(inputs: int, outputs: int, hidden_sizes: Sequence[int] = (64, 32), dropout: float = 0.0) -> torch.nn.Module:
    import torch

    layers: list[torch.nn.Module] = []
    width = inputs
    for size in hidden_sizes:
        layers += [torch.nn.Linear(width, int(size)), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(float(dropout)))
        width = int(size)
    layers.append(torch.nn.Linear(width, outputs))
    return torch.nn.Sequential(*layers)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000, *, lowercase: bool = True,
                    max_length: int = 128) -> Any:
    """A WordPiece tokenizer whose vocabulary is learnt from `texts`, as a transformers fast tokenizer.

    The vocabulary is built here, not by the `tokenizers` trainer: that trainer breaks ties between
    equally frequent merges in hash order, so two trainings on the same texts can differ. Here it is
    the special tokens, every character seen (alone and as a `##` continuation, so any word can be
    spelt), then the most frequent words, ties by the word itself: the same texts, the same ids.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    splitter = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({ch for word in words for ch in word})
    vocabulary = [*SPECIAL, *characters, *(f"##{ch}" for ch in characters)]
    room = max(0, vocab_size - len(vocabulary))
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocabulary += ranked[:room]
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = splitter
    tokenizer.decoder = decoders.WordPiece()
    cls, sep = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast: Any = PreTrainedTokenizerFast  # untyped in transformers
    return fast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length)


def text_classifier(family: str, config: Mapping[str, Any], vocab_size: int, labels: int,
                    max_length: int = 128) -> Any:
    """A sequence classifier of `family`, randomly initialised from `config` (no weights downloaded)."""
    import transformers

    if family not in FAMILIES:
        raise ValueError(f"family `{family}` is not a text architecture (one of {', '.join(FAMILIES)})")
    config_class, model_class = {
        "bert": (transformers.BertConfig, transformers.BertForSequenceClassification),
        "distilbert": (transformers.DistilBertConfig, transformers.DistilBertForSequenceClassification),
        "roberta": (transformers.RobertaConfig, transformers.RobertaForSequenceClassification),
    }[family]
    extra: dict[str, Any] = {"vocab_size": vocab_size, "num_labels": labels, "pad_token_id": 0}
    positions = "max_position_embeddings"
    extra[positions] = int(config.get(positions, max_length + (2 if family == "roberta" else 0)))
    try:
        return model_class(config_class(**{**dict(config), **extra}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"architecture.config does not fit {config_class.__name__}: {err}") from None
