"""Fingerprints change exactly when a resource's result could change, and only then."""

from __future__ import annotations

from typing import Any

from mlspec.plan.fingerprint import Fingerprint, fingerprint

SPEC: dict[str, Any] = {"task": "text-classification", "dataset": "reviews", "hyperparameters": {"lr": 0.001, "epochs": 2}}
META: dict[str, Any] = {"name": "sentiment", "owner": "team-nlp", "labels": {"tier": "gold"}}


def fp(spec: dict[str, Any] = SPEC, meta: dict[str, Any] = META, **kw: Any) -> Fingerprint:
    kw.setdefault("plugin", "torch")
    kw.setdefault("plugin_version", "0.1.0")
    return fingerprint("Model", meta, spec, **kw)


def test_stable_under_key_order() -> None:
    reordered = {"hyperparameters": {"epochs": 2, "lr": 0.001}, "dataset": "reviews", "task": "text-classification"}
    assert fp(reordered) == fp()


def test_a_spec_change_changes_the_data_part() -> None:
    changed = fp({**SPEC, "hyperparameters": {"lr": 0.002, "epochs": 2}})
    assert changed.data != fp().data


def test_owner_labels_and_description_change_only_the_metadata_part() -> None:
    base = fp()
    for variant in (
        fp(meta={**META, "owner": "team-ml"}),
        fp(meta={**META, "labels": {"tier": "silver"}}),
        fp({**SPEC, "description": "now documented"}),
        fp({**SPEC, "lifecycle": {"prevent_destroy": True}}),
    ):
        assert variant.data == base.data and variant.metadata != base.metadata


def test_inputs_plugin_version_and_upstream_reach_the_data_part() -> None:
    base = fp(inputs={"data/reviews.csv": "aa"})
    assert fp(inputs={"data/reviews.csv": "bb"}).data != base.data
    assert fp(inputs={"data/reviews.csv": "aa"}, plugin_version="0.2.0").data != base.data
    upstream_a = fingerprint("Dataset", {}, {"source": 1}, plugin="data", plugin_version="1")
    upstream_b = fingerprint("Dataset", {}, {"source": 2}, plugin="data", plugin_version="1")
    assert fp(upstream={"Dataset/reviews": upstream_a}).data != fp(upstream={"Dataset/reviews": upstream_b}).data


def test_upstream_metadata_does_not_ripple_down() -> None:
    # Relabelling a Dataset must not retrain the Models built on it.
    plain = fingerprint("Dataset", {"owner": "a"}, {"source": 1}, plugin="data", plugin_version="1")
    relabelled = fingerprint("Dataset", {"owner": "b"}, {"source": 1}, plugin="data", plugin_version="1")
    assert fp(upstream={"Dataset/reviews": plain}) == fp(upstream={"Dataset/reviews": relabelled})
