"""The Model plugin (issue 7, in progress): training with torch and transformers, evaluation, gates.

Not registered as an entry point yet: until it is, Model specs are validated and listed as not
planned. What is here is complete in itself and tested: `metrics` (evaluation metrics and gate
verdicts), `tabular` (the encoding of a table), `loop` (training with checkpoints and exact
resume), `architectures` (MLP, BERT-style classifiers, a deterministic tokenizer), `splits`
(reading a Dataset's splits by digest), `card` (the model card, from facts) and `training` (one
run: data, architecture, loop, evaluation, gates, artifacts by digest, for tabular and text
models). Still to come: the plugin class and its registration, entrypoint models, DDP through
torchrun, the registry with aliases and its commands, the card in the artifacts, estimates.
"""
