"""The Model plugin (issue 7, in progress): training with torch and transformers, evaluation, gates.

Not registered as an entry point yet: until it is, Model specs are validated and listed as not
planned. What is here is complete in itself and tested: `metrics` (evaluation metrics and gate
verdicts), `tabular` (the encoding of a table), `loop` (training with checkpoints and exact
resume), `architectures` (MLP, BERT-style classifiers, a deterministic tokenizer), `splits`
(reading a Dataset's splits by digest) and `card` (the model card, from facts). Still to come: the
plugin itself, DDP through torchrun, the registry with aliases and its commands, estimates.
"""
