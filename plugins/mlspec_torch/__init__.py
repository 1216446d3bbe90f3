"""The built-in Model plugin: training with torch and transformers, evaluation, gates, registry.

`plugin` is what the engine calls; the rest is what it is made of, each testable alone: `training`
(one run: data, architecture, loop, evaluation, gates, artifacts by digest), `loop` (the training
loop: precision, checkpoints, exact resume, DDP, a stop on NaN), `architectures` (MLP, BERT-style
classifiers, a deterministic tokenizer), `tabular` (the encoding of a table), `metrics`
(evaluation and gate verdicts), `splits` (a Dataset's splits, read by digest), `card` (the model
card, from facts), `entrypoint` (the team's own training function) and `distributed` (torchrun).
Nothing here imports torch at import time: `mlspec plan` stays fast.
"""

from mlspec_torch.plugin import ModelPlugin

__all__ = ["ModelPlugin"]
