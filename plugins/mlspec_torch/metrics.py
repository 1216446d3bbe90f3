"""Evaluation metrics and gates: pure numpy, so they are exact, fast and testable without torch.

Classification metrics take integer labels and, for `roc_auc`, the positive class's scores (binary)
or per-class scores (macro one-vs-rest). F1, precision and recall are macro-averaged over classes,
as a reviewer comparing two models on imbalanced data would want.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.sdk.kinds import GATE_RE, LOWER_IS_BETTER

if TYPE_CHECKING:
    import numpy as np


def classification(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None,
                   wanted: Sequence[str]) -> dict[str, float]:
    import numpy as np

    out: dict[str, float] = {}
    classes = np.unique(np.concatenate([labels, predicted]))
    if "accuracy" in wanted:
        out["accuracy"] = float((labels == predicted).mean()) if len(labels) else 0.0
    if {"f1", "precision", "recall"} & set(wanted):
        precisions, recalls, f1s = [], [], []
        for k in classes:
            tp = float(((predicted == k) & (labels == k)).sum())
            fp = float(((predicted == k) & (labels != k)).sum())
            fn = float(((predicted != k) & (labels == k)).sum())
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            precisions.append(p)
            recalls.append(r)
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        for name, values in (("precision", precisions), ("recall", recalls), ("f1", f1s)):
            if name in wanted:
                out[name] = float(np.mean(values)) if values else 0.0
    if "roc_auc" in wanted and scores is not None:
        out["roc_auc"] = roc_auc(labels, scores)
    return out


def from_outputs(task: str, outputs: np.ndarray, targets: np.ndarray, wanted: Sequence[str]) -> dict[str, float]:
    """Metrics from a model's raw outputs: logits (rows x classes) for a classifier, one value per row
    for a regression. Training, an Optimization's parity check and a Service score the same way."""
    import numpy as np

    if "classification" in task:
        shifted = outputs - outputs.max(axis=1, keepdims=True) if len(outputs) else outputs
        scores = np.exp(shifted)
        scores /= scores.sum(axis=1, keepdims=True) if len(outputs) else 1
        return classification(targets, scores.argmax(axis=1), scores, wanted)
    return regression(targets, outputs.reshape(len(outputs), -1)[:, 0], wanted)


def regression(targets: np.ndarray, predicted: np.ndarray, wanted: Sequence[str]) -> dict[str, float]:
    import numpy as np

    errors = predicted - targets
    out: dict[str, float] = {}
    if "rmse" in wanted:
        out["rmse"] = float(np.sqrt(np.mean(errors**2))) if len(errors) else 0.0
    if "mae" in wanted:
        out["mae"] = float(np.mean(np.abs(errors))) if len(errors) else 0.0
    return out


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Binary: the Mann-Whitney U statistic (ties counted half). Multi-class: macro one-vs-rest."""
    import numpy as np

    if scores.ndim == 2 and scores.shape[1] > 2:
        aucs = [_binary_auc(labels == k, scores[:, k]) for k in range(scores.shape[1]) if (labels == k).any()]
        return float(np.mean(aucs)) if aucs else 0.5
    positive = scores[:, 1] if scores.ndim == 2 else scores
    return _binary_auc(labels == 1, positive)


def _binary_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    import numpy as np

    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return 0.5
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based ranks, ties sharing their average
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    passed: bool
    observed: float | None
    threshold: float | None
    margin: float | None  # how far past (positive) or short of (negative) the threshold
    why: str


def gates(rules: Sequence[str], metrics: Mapping[str, float], champion: Mapping[str, float] | None
          ) -> list[GateResult]:
    """Each gate against these metrics; `champion` gates pass when there is no champion yet."""
    out = []
    for rule in rules:
        match = GATE_RE.match(rule)
        if match is None:  # validation refuses these; keep the verdict honest anyway
            out.append(GateResult(rule, False, None, None, None, "not a gate"))
            continue
        metric, op = match["metric"], match["op"]
        observed = metrics.get(metric)
        if match["champion"]:
            base = (champion or {}).get(metric)
            if base is None:
                out.append(GateResult(rule, True, observed, None, None, "no champion yet: nothing to beat"))
                continue
            delta = float(match["delta"] or 0) * (-1 if match["sign"] == "-" else 1)
            threshold = base + delta
        else:
            threshold = float(match["value"])
        if observed is None:
            out.append(GateResult(rule, False, None, threshold, None, f"`{metric}` was not measured"))
            continue
        passed = {">=": observed >= threshold, ">": observed > threshold, "<=": observed <= threshold,
                  "<": observed < threshold}[op]
        margin = (observed - threshold) if op in (">=", ">") else (threshold - observed)
        why = (f"{metric} {observed:.4f} {op} {threshold:.4f}, by {abs(margin):.4f}" if passed else
               f"{metric} {observed:.4f}, needs {op} {threshold:.4f}: short by {abs(margin):.4f}")
        out.append(GateResult(rule, passed, observed, threshold, margin, why))
    return out


def better(metric: str, a: float, b: float) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b
