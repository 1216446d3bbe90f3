"""What the Monitor plugin needs of the Monitor kind: each method's default threshold (Evidently's),
and the key of a resource's outputs by which it asks the next plan to replace another resource."""

from mlspec.spec.kinds.monitor import DEFAULT_THRESHOLDS, P_VALUE_METHODS

# outputs[REPLACE_REQUESTS] = [{"address": "Model/x", "because": "...", "at": "<ISO time>"}]: the planner
# replaces each address whose state was last written before `at`, with `because` as the cause.
REPLACE_REQUESTS = "replace_requests"

__all__ = ["DEFAULT_THRESHOLDS", "P_VALUE_METHODS", "REPLACE_REQUESTS"]
