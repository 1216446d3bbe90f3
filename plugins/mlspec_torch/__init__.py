"""The Model plugin (issue 7, in progress): training with torch and transformers, evaluation, gates.

Not registered as an entry point yet: until it is, Model specs are validated and listed as not
planned. What is here is complete in itself: `metrics` (evaluation metrics and gate verdicts).
"""
