"""The built-in Dataset plugin as a user meets it: `mlspec plan` and `mlspec apply` on real data files.

Each test writes a few tens to a few thousand rows (csv, jsonl or parquet) into a temporary spec repo
and drives the real command line in-process. What apply produced is read back the way a downstream step
would: the outputs from `mlspec state show`, the split parquet files from the content-addressed store
under `.mlspec/artifacts/`. A few unit tests pin the split arithmetic (`counts`, `assign`) and the value
hashes behind the uniqueness checks (`column_hashes`), where a direct call says more than a CLI run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlspec_data.quality import column_hashes
from mlspec_data.splits import assign, counts

from tests.cli import Result

Mlspec = Callable[..., Result]
Project = Callable[..., Path]

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
CONFIG = "specs: ['specs/**/*.yaml']\n"
SALT_VAR = "PII_SALT_TEST"
SALT = "pepper-7f3a9c-never-in-logs"
HEX64 = re.compile(r"[0-9a-f]{64}")
RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}


# --------------------------------------------------------------------------------------------------
# helpers


def dataset(path: str | list[str] = "data/x.csv", fmt: str = "csv", name: str = "x", **spec: Any) -> str:
    """A Dataset spec (JSON is YAML) reading `path` as `fmt`, with any other spec fields."""
    body = {"source": {"path": path, "format": fmt}, **spec}
    doc = {"apiVersion": "mlspec/v1", "kind": "Dataset", "metadata": {"name": name}, "spec": body}
    return json.dumps(doc, indent=2) + "\n"


def task(name: str, code: str, **spec: Any) -> str:
    doc = {"apiVersion": "mlspec/v1", "kind": "Task", "metadata": {"name": name},
           "spec": {"cmd": [PY, "-c", code], **spec}}
    return json.dumps(doc, indent=2) + "\n"


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def people(n: int = 60) -> list[dict[str, Any]]:
    """id, email (PII, repeating), phone (PII), label, score: every value exact in csv, json and parquet."""
    return [{"id": i, "email": f"user{i % 7}@example.com", "phone": f"555-{i:04d}", "label": "b" if i % 3 == 0 else "a",
             "score": i * 0.25} for i in range(1, n + 1)]


def write_rows(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path.write_text(csv_text(list(rows[0]), [list(r.values()) for r in rows]))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)


def outputs(mlspec: Mlspec, root: Path, address: str = "Dataset/x") -> dict[str, Any]:
    shown = mlspec(root, "state", "show", address, "--format", "json")
    assert shown.code == 0, shown.output
    result: dict[str, Any] = shown.json()["outputs"]
    return result


def statuses(mlspec: Mlspec, root: Path) -> dict[str, str]:
    listed = mlspec(root, "state", "list", "--format", "json")
    assert listed.code == 0, listed.output
    return {r["address"]: r["status"] for r in listed.json()["resources"]}


def on_disk(root: Path, uri: str) -> Path:
    """Local artifact URIs are relative to the spec repo, so the repo can move."""
    return Path(uri) if Path(uri).is_absolute() else root / uri


def split_rows(root: Path, out: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {name: pq.read_table(on_disk(root, split["uri"])).to_pylist() for name, split in out["splits"].items()}


def failure(result: Result, address: str = "Dataset/x") -> str:
    """The apply summary's reason for `address` failing (not the plan, which echoes the spec's fields)."""
    assert result.code == 1, result.output
    marker = f"failed: {address}\n"
    assert marker in result.out, result.output
    return result.out.split(marker, 1)[1].split("\nApply failed:", 1)[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# apply: versioned outputs, split artifacts, PII


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_format_applies_to_content_addressed_splits_with_pii_dropped_or_hashed(
    mlspec: Mlspec, project: Project, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv(SALT_VAR, SALT)
    source = f"data/people.{fmt}"
    spec = dataset(source, fmt, splits={"ratios": RATIOS, "seed": 3},
                   pii={"columns": {"email": "hash", "phone": "drop"}, "salt": f"${{env:{SALT_VAR}}}"})
    root = project({"specs/x.yaml": spec}, config=CONFIG)
    rows = people()
    write_rows(root / source, rows, fmt)

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root)
    assert HEX64.fullmatch(out["version"])
    assert out["sources"] == {source: sha256(root / source)}
    assert out["rows"] == 60
    assert set(out["columns"]) == {"id", "email", "label", "score"}  # phone is dropped
    assert out["pii"] == {"dropped": ["phone"], "hashed": ["email"]}

    store = (root / ".mlspec" / "artifacts" / "sha256").resolve()
    assert set(out["splits"]) == set(RATIOS)
    for split in [*out["splits"].values(), out["profile"]]:
        path = on_disk(root, split["uri"]).resolve()
        assert not Path(split["uri"]).is_absolute()
        assert path.parent.parent == store and path.parent.name == split["digest"][:2]
        assert path.is_file() and sha256(path) == split["digest"]
    assert [out["splits"][name]["rows"] for name in RATIOS] == counts(60, RATIOS)

    got = [row for part in split_rows(root, out).values() for row in part]
    assert all(set(row) == {"id", "email", "label", "score"} for row in got)
    assert Counter((r["id"], r["label"], r["score"]) for r in got) == Counter(
        (r["id"], r["label"], r["score"]) for r in rows)
    hashed = {row["id"]: row["email"] for row in got}
    assert all(HEX64.fullmatch(h) for h in hashed.values())
    by_email: dict[str, set[str]] = {}
    for row in rows:
        by_email.setdefault(row["email"], set()).add(hashed[row["id"]])
    assert all(len(h) == 1 for h in by_email.values()), "equal emails hash equally"
    assert len(set(hashed.values())) == len(by_email), "different emails hash differently"


def test_the_salt_comes_from_the_environment_and_is_never_written_down(
    mlspec: Mlspec, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataset(pii={"columns": {"email": "hash"}, "salt": f"${{env:{SALT_VAR}}}"})
    root = project({"specs/x.yaml": spec}, config=CONFIG)
    write_rows(root / "data/x.csv", people(20), "csv")

    monkeypatch.delenv(SALT_VAR, raising=False)
    missing = mlspec(root, "apply", "-y")
    assert f"environment variable {SALT_VAR} is not set" in failure(missing)
    assert statuses(mlspec, root) == {"Dataset/x": "tainted"}

    monkeypatch.setenv(SALT_VAR, SALT)
    plan = mlspec(root, "plan")
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root)
    assert SALT not in json.dumps(out) and SALT not in plan.output + applied.output
    assert f"${{env:{SALT_VAR}}}" in mlspec(root, "state", "show", "Dataset/x", "--format", "json").out
    written = [p for p in (root / ".mlspec").rglob("*") if p.is_file()]
    assert root / ".mlspec" / "state.db" in written and any(p.suffix == ".jsonl" for p in written)
    assert [p for p in written if SALT.encode() in p.read_bytes()] == []

    monkeypatch.setenv(SALT_VAR, "another-salt")
    assert mlspec(root, "apply", "-y", "--replace", "Dataset/x").code == 0
    rehashed = outputs(mlspec, root)
    assert rehashed["splits"]["all"]["digest"] != out["splits"]["all"]["digest"], "the salt changes every hash"


def test_the_profile_never_holds_raw_pii_values(
    mlspec: Mlspec, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile is an output downstream reads (a Monitor): what it says about PII must not be the PII."""
    monkeypatch.setenv(SALT_VAR, SALT)
    spec = dataset(pii={"columns": {"email": "hash", "phone": "drop"}, "salt": f"${{env:{SALT_VAR}}}"})
    root = project({"specs/x.yaml": spec}, config=CONFIG)
    rows = people(30)
    write_rows(root / "data/x.csv", rows, "csv")
    assert mlspec(root, "apply", "-y").code == 0
    profile = on_disk(root, outputs(mlspec, root)["profile"]["uri"]).read_text()
    leaked = sorted({v for r in rows for v in (r["email"], r["phone"]) if v in profile})
    assert leaked == [], f"raw PII in the profile artifact: {leaked[:3]}"


# --------------------------------------------------------------------------------------------------
# sources: files, directories, globs, and paths that leave the repo


@pytest.mark.parametrize("path", ["data/parts", "data/parts/*.csv", ["data/parts/a.csv", "data/parts/b.csv"]])
def test_directory_glob_and_list_sources_read_every_file(mlspec: Mlspec, project: Project, path: Any) -> None:
    root = project({"specs/x.yaml": dataset(path),
                    "data/parts/a.csv": csv_text(["id", "v"], [[i, i] for i in range(5)]),
                    "data/parts/b.csv": csv_text(["id", "v"], [[i, -i] for i in range(5, 12)]),
                    "data/parts/.hidden": "not data"}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    out = outputs(mlspec, root)
    assert out["rows"] == 12 and out["splits"]["all"]["rows"] == 12
    assert out["sources"] == {f"data/parts/{n}.csv": sha256(root / f"data/parts/{n}.csv") for n in "ab"}
    assert sorted(r["id"] for r in split_rows(root, out)["all"]) == list(range(12))


def test_files_of_one_dataset_that_disagree_on_columns_fail_naming_the_odd_file(
    mlspec: Mlspec, project: Project
) -> None:
    root = project({"specs/x.yaml": dataset("data/parts"),
                    "data/parts/a.csv": csv_text(["id", "v"], [[1, 2], [2, 3]]),
                    "data/parts/b.csv": csv_text(["id", "w"], [[3, 4]])}, config=CONFIG)
    why = failure(mlspec(root, "apply", "-y"))
    assert "data/parts/b.csv" in why, why
    assert "ValueError" not in why, "a reader's exception is not a message"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("data/*.tsv", "source glob `data/*.tsv` matches no file"),
        ("data/nope.csv", "source `data/nope.csv` does not exist"),
        ("data/empty", "source directory `data/empty` holds no file"),
    ],
)
def test_a_source_that_names_no_file_fails_the_plan(
    mlspec: Mlspec, project: Project, path: str, message: str
) -> None:
    root = project({"specs/x.yaml": dataset(path), "data/x.csv": "a\n1\n"}, config=CONFIG)
    (root / "data/empty").mkdir()
    plan = mlspec(root, "plan")
    assert plan.code == 1 and f"Dataset/x: {message}" in plan.err, plan.output


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_a_source_outside_the_repo_is_refused(
    mlspec: Mlspec, project: Project, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    path = {"parent": "../outside.csv", "absolute": str(outside), "symlink": "data/link.csv"}[where]
    root = project({"specs/x.yaml": dataset(path)}, config=CONFIG)
    (root / "data").mkdir()
    (root / "data/link.csv").symlink_to(outside)
    for command in ("plan", "apply"):
        result = mlspec(root, command)
        assert result.code == 1, result.output
        if where == "symlink":
            assert "`data/link.csv` resolves outside the spec repo" in result.err
        else:
            assert f"source `{path}` leaves the spec repo" in result.err
    assert not (root / ".mlspec" / "artifacts").exists()


# --------------------------------------------------------------------------------------------------
# deterministic splits


def test_the_same_content_and_seed_give_the_same_splits_in_another_checkout(
    mlspec: Mlspec, project: Project, tmp_path: Path
) -> None:
    files = {"specs/x.yaml": dataset(splits={"ratios": RATIOS, "seed": 11}),
             "data/x.csv": csv_text(["id", "v"], [[i, i % 13] for i in range(200)])}
    first = project(files, config=CONFIG)
    second = tmp_path / "elsewhere"
    shutil.copytree(first, second)
    assert mlspec(first, "apply", "-y").code == 0 and mlspec(second, "apply", "-y").code == 0
    one, two = outputs(mlspec, first), outputs(mlspec, second)
    assert one["version"] == two["version"]
    assert {n: s["digest"] for n, s in one["splits"].items()} == {n: s["digest"] for n, s in two["splits"].items()}

    (second / "specs/x.yaml").write_text(dataset(splits={"ratios": RATIOS, "seed": 12}))
    plan = mlspec(second, "plan")
    assert "-/+ Dataset/x  replace" in plan.out and "spec.splits.seed" in plan.out, plan.out
    assert mlspec(second, "apply", "-y").code == 0
    reseeded = outputs(mlspec, second)
    assert reseeded["version"] == one["version"], "the version is the data's, not the split's"
    for name in RATIOS:
        assert reseeded["splits"][name]["rows"] == one["splits"][name]["rows"]
        assert reseeded["splits"][name]["digest"] != one["splits"][name]["digest"]


def test_stratified_splits_keep_each_class_balance_within_one_row(mlspec: Mlspec, project: Project) -> None:
    sizes = {"common": 137, "rare": 23, "rarest": 11}
    labels = [label for label, n in sizes.items() for _ in range(n)]
    random.Random(5).shuffle(labels)
    spec = dataset(splits={"ratios": RATIOS, "seed": 2, "stratify_by": "label"})
    root = project({"specs/x.yaml": spec,
                    "data/x.csv": csv_text(["id", "label"], [[i, lab] for i, lab in enumerate(labels)])}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    splits = split_rows(root, outputs(mlspec, root))
    for name, ratio in RATIOS.items():
        seen = Counter(row["label"] for row in splits[name])
        for label, n in sizes.items():
            assert abs(seen[label] - n * ratio) <= 1, (name, label, seen[label], n * ratio)
    assert sum(len(rows) for rows in splits.values()) == len(labels)


def test_counts_give_every_leftover_row_to_the_largest_remainders() -> None:
    assert counts(10, {"train": 0.8, "validation": 0.1, "test": 0.1}) == [8, 1, 1]
    assert counts(7, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == [3, 2, 2]  # ties go in spec order
    assert counts(9, {"a": 0.5, "b": 0.25, "c": 0.25}) == [5, 2, 2]
    assert counts(0, RATIOS) == [0, 0, 0]
    for total in range(1, 400):
        got = counts(total, RATIOS)
        assert sum(got) == total
        assert all(abs(n - total * r) < 1 for n, r in zip(got, RATIOS.values(), strict=True))


def test_assign_is_a_seeded_permutation_cut_by_counts() -> None:
    first = assign(101, RATIOS, 5, None)
    assert first.dtype == np.int8 and len(first) == 101
    assert np.bincount(first, minlength=3).tolist() == counts(101, RATIOS)
    assert np.array_equal(first, assign(101, RATIOS, 5, None))
    assert not np.array_equal(first, assign(101, RATIOS, 6, None))
    strata = np.array([i % 4 for i in range(101)])
    stratified = assign(101, RATIOS, 5, strata)
    for k in range(4):
        members = stratified[strata == k]
        assert np.bincount(members, minlength=3).tolist() == counts(len(members), RATIOS)


def test_column_hashes_are_per_value_whatever_the_batch() -> None:
    """Uniqueness and duplicate checks compare hashes from different batches: a value must hash alike."""
    for one, two in [(pa.array([3, 1, None, 3]), pa.array([None, 7, 3])),
                     (pa.array(["b", "a", None, "b"]), pa.array([None, "z", "b"])),
                     (pa.array([0.5, 2.0, None, 0.5]), pa.array([None, 9.0, 0.5]))]:
        h, k = column_hashes(one), column_hashes(two)
        assert h.dtype == np.uint64 and len(h) == 4
        assert h[0] == h[3] == k[2], "equal values, equal hashes, across batches"
        assert h[2] == k[0], "nulls share one hash"
        assert len({int(h[0]), int(h[1]), int(h[2]), int(k[1])}) == 4


# --------------------------------------------------------------------------------------------------
# plans: no-op, edited and appended data, drift


def test_an_applied_dataset_plans_nothing_until_its_bytes_change(mlspec: Mlspec, project: Project) -> None:
    data = csv_text(["id", "v"], [[i, i * 2] for i in range(1000)])
    root = project({"specs/x.yaml": dataset(), "data/x.csv": data}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    again = mlspec(root, "plan", "--detailed-exitcode")
    assert again.code == 0 and again.out.startswith("No changes."), again.output

    old = sha256(root / "data/x.csv")
    (root / "data/x.csv").write_text(data.replace("\n500,1000\n", "\n500,1001\n"))  # one byte
    new = sha256(root / "data/x.csv")
    plan = mlspec(root, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "-/+ Dataset/x  replace" in plan.out
    assert f"because inputs changed: data/x.csv changed ({old[:8]}… -> {new[:8]}…)" in plan.out
    assert "rows 1,000" not in plan.out, "the row count did not change"

    with (root / "data/x.csv").open("a") as fh:
        fh.write("".join(f"{i},{i * 2}\n" for i in range(1000, 1204)))
    appended = mlspec(root, "plan")
    assert f"data/x.csv changed ({old[:8]}… -> {sha256(root / 'data/x.csv')[:8]}…), rows 1,000 -> 1,204 (+204)" \
        in appended.out, appended.out
    assert mlspec(root, "apply", "-y").code == 0
    assert outputs(mlspec, root)["rows"] == 1204
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_a_split_deleted_from_the_store_is_drift_that_apply_repairs(mlspec: Mlspec, project: Project) -> None:
    spec = dataset(splits={"ratios": {"train": 0.8, "test": 0.2}})
    root = project({"specs/x.yaml": spec, "data/x.csv": csv_text(["id"], [[i] for i in range(50)])}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    train = on_disk(root, outputs(mlspec, root)["splits"]["train"]["uri"])
    train.unlink()
    plan = mlspec(root, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "-/+ Dataset/x  replace" in plan.out
    assert "because drift: artifact split `train` deleted from the store" in plan.out
    assert mlspec(root, "apply", "-y").code == 0
    assert train.is_file() and on_disk(root, outputs(mlspec, root)["splits"]["train"]["uri"]) == train
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


# --------------------------------------------------------------------------------------------------
# checks that fail: the column, the rule, what was observed, the offending rows


ROWS4 = "id,age,label\n1,30,positive\n2,,negative\n3,41,negative\n4,,positive\n"  # age: 2 of 4 null


@pytest.mark.parametrize(
    ("spec", "data", "expected"),
    [
        pytest.param({"schema": {"columns": {"age": {"type": "int", "nullable": False}}}}, ROWS4,
                     ["column `age`: rule `nullable` failed", "offending rows (2 of 2)",
                      "data/x.csv row 2 = None; data/x.csv row 4 = None"], id="nullable"),
        pytest.param({"schema": {"columns": {"age": {"type": "int", "range": {"min": 0, "max": 120}}}}},
                     "id,age\n1,30\n2,200\n3,-1\n4,7\n",
                     ["column `age`: rule `range` failed: values outside [0, 120]",
                      "data/x.csv row 2 = 200; data/x.csv row 3 = -1"], id="range"),
        pytest.param({"schema": {"columns": {"label": {"type": "category", "allowed": ["negative", "positive"]}}}},
                     "id,label\n1,positive\n2,neutral\n3,negative\n",
                     ["column `label`: rule `allowed` failed: values outside ['negative', 'positive']",
                      "data/x.csv row 2 = 'neutral'"], id="allowed"),
        pytest.param({"schema": {"columns": {"id": {"type": "int", "unique": True}}}},
                     "id,v\n1,a\n2,b\n3,c\n2,d\n5,e\n3,f\n",
                     ["column `id`: rule `unique` failed: 2 repeated value(s)",
                      "data/x.csv row 4 = 2; data/x.csv row 6 = 3"], id="unique"),
        pytest.param({"checks": {"min_rows": 1000}}, ROWS4,
                     ["rule `min_rows` failed: 4 rows, fewer than 1,000"], id="min_rows"),
        pytest.param({"checks": {"max_null_fraction": 0.3}}, ROWS4,
                     ["column `age`: rule `max_null_fraction` failed: 0.5000 of rows are null, more than 0.3"],
                     id="max_null_fraction"),
        pytest.param({"checks": {"max_null_fraction": {"age": 0.25, "id": 0.0}}}, ROWS4,
                     ["column `age`: rule `max_null_fraction` failed: 0.5000 of rows are null, more than 0.25"],
                     id="max_null_fraction-per-column"),
        pytest.param({"checks": {"max_duplicate_fraction": 0.1}}, "id,label\n1,a\n1,a\n2,b\n1,a\n",
                     ["rule `max_duplicate_fraction` failed: 0.5000 of rows repeat an earlier row, more than 0.1"],
                     id="max_duplicate_fraction"),
        pytest.param({"schema": {"columns": {"id": {"type": "int"}, "age": {"type": "int"}}, "strict": True}},
                     ROWS4, ["schema.strict", "label"], id="strict"),
        pytest.param({"schema": {"columns": {"lable": {"type": "category"}}}}, ROWS4,
                     ["column lable is not in the data", "did you mean `label`?"], id="missing-column"),
        pytest.param({"schema": {"columns": {"label": {"type": "int"}}}}, ROWS4,
                     ["column `label`: rule `type` failed: declared int, the data holds string"], id="type"),
    ],
)
def test_a_failed_check_fails_apply_naming_column_rule_and_rows(
    mlspec: Mlspec, project: Project, spec: dict[str, Any], data: str, expected: list[str]
) -> None:
    root = project({"specs/x.yaml": dataset(**spec), "data/x.csv": data}, config=CONFIG)
    why = failure(mlspec(root, "apply", "-y"))
    for text in expected:
        assert text in why, why
    assert statuses(mlspec, root) == {"Dataset/x": "tainted"}
    assert not (root / ".mlspec" / "artifacts" / "sha256").exists(), "no split of data that failed a check"


def test_only_five_offending_rows_are_quoted_each_numbered_within_its_file(
    mlspec: Mlspec, project: Project
) -> None:
    spec = dataset("data/parts", schema={"columns": {"age": {"type": "int", "nullable": False}}})
    first = csv_text(["age"], [[i] for i in range(10)])
    second = csv_text(["age"], [[None if i % 2 else i] for i in range(16)])  # nulls at rows 2, 4, ..., 16
    root = project({"specs/x.yaml": spec, "data/parts/a.csv": first, "data/parts/b.csv": second}, config=CONFIG)
    why = failure(mlspec(root, "apply", "-y"))
    assert "offending rows (5 of 8)" in why, why
    assert why.count("= None") == 5
    assert "data/parts/b.csv row 2 = None; data/parts/b.csv row 4 = None" in why
    assert "data/parts/a.csv row" not in why


def test_a_dataset_that_fails_a_check_skips_its_dependents_until_the_data_is_fixed(
    mlspec: Mlspec, project: Project
) -> None:
    spec = dataset(schema={"columns": {"age": {"type": "int", "nullable": False}}})
    train = task("train", "open('trained.txt', 'w').write('ok')", depends_on=["Dataset/x"])
    root = project({"specs/x.yaml": spec, "specs/train.yaml": train, "data/x.csv": "id,age\n1,3\n2,\n"},
                   config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert "rule `nullable` failed" in failure(applied)
    assert "Task/train: skipped (upstream Dataset/x failed)" in applied.err
    assert "Apply failed: 0 done, 1 failed, 1 skipped." in applied.out
    assert statuses(mlspec, root) == {"Dataset/x": "tainted"}
    assert not (root / "trained.txt").exists()

    (root / "data/x.csv").write_text("id,age\n1,3\n2,4\n")
    fixed = mlspec(root, "apply", "-y")
    assert fixed.code == 0, fixed.output
    assert statuses(mlspec, root) == {"Dataset/x": "applied", "Task/train": "applied"}
    assert (root / "trained.txt").read_text() == "ok"


# --------------------------------------------------------------------------------------------------
# input that cannot be read


@pytest.mark.parametrize(
    ("name", "fmt", "content", "expected"),
    [
        pytest.param("x.parquet", "parquet", random.Random(0).randbytes(600), "cannot read it as parquet",
                     id="corrupt-parquet"),
        pytest.param("x.csv", "csv", b"a,b\n1,2\n3\n4,5\n", "Expected 2 columns, got 1", id="ragged-csv"),
        pytest.param("x.csv", "csv", "id,city\n1,Zürich\n2,Montréal\n".encode("latin-1"), "encoding",
                     id="latin-1-as-utf-8"),
        pytest.param("x.csv", "csv", b"id,label\n", "no rows", id="header-only"),
        pytest.param("x.csv", "csv", b"", "empty", id="empty-csv"),
        pytest.param("x.jsonl", "jsonl", b"", "empty", id="empty-jsonl"),
    ],
)
def test_unreadable_input_fails_apply_naming_the_file(
    mlspec: Mlspec, project: Project, name: str, fmt: str, content: bytes, expected: str
) -> None:
    root = project({"specs/x.yaml": dataset(f"data/{name}", fmt), f"data/{name}": content}, config=CONFIG)
    assert mlspec(root, "plan").code == 0, "a plan only counts rows: apply says what is wrong"
    why = failure(mlspec(root, "apply", "-y"))  # and, as every mlspec() call checks, no traceback
    assert f"data/{name}" in why, why
    assert expected.lower() in why.lower(), why
    assert statuses(mlspec, root) == {"Dataset/x": "tainted"}


# --------------------------------------------------------------------------------------------------
# the profile


def test_the_profile_describes_every_column(mlspec: Mlspec, project: Project) -> None:
    plans = ["basic", "plus", "pro"]
    rows = [[i, None if i % 10 == 0 else i * 0.5, plans[i % 3]] for i in range(1, 101)]  # spend: 10 nulls
    root = project({"specs/x.yaml": dataset(), "data/x.csv": csv_text(["id", "spend", "plan"], rows)},
                   config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    artifact = outputs(mlspec, root)["profile"]
    path = on_disk(root, artifact["uri"])
    assert path.suffix == ".json" and sha256(path) == artifact["digest"]
    profile = json.loads(path.read_text())
    columns = profile["columns"]
    assert set(columns) == {"id", "spend", "plan"}
    assert {name: c["null_fraction"] for name, c in columns.items()} == {"id": 0.0, "spend": 0.1, "plan": 0.0}

    ids = columns["id"]
    assert (ids["min"], ids["max"], ids["mean"]) == (1.0, 100.0, 50.5)
    assert ids["quantiles"]["0.5"] == pytest.approx(50.5)
    assert list(ids["quantiles"]) == sorted(ids["quantiles"], key=float)
    assert len(ids["histogram"]["edges"]) == len(ids["histogram"]["fractions"]) + 1
    assert sum(ids["histogram"]["fractions"]) == pytest.approx(1.0)
    assert columns["spend"]["max"] == 49.5 and "top_values" not in columns["spend"]

    top = columns["plan"]["top_values"]
    expected = Counter(row[2] for row in rows)
    assert top == {value: n / 100 for value, n in expected.items()}
    assert "histogram" not in columns["plan"]


# --------------------------------------------------------------------------------------------------
# validation across kinds


@pytest.mark.parametrize("action", ["drop", "hash"])
def test_a_model_may_not_learn_from_a_pii_column(mlspec: Mlspec, project: Project, action: str) -> None:
    model = """\
apiVersion: mlspec/v1
kind: Model
metadata: {name: sentiment}
spec:
  task: text-classification
  dataset: x
  features: [text, email]
  label: label
  architecture: {family: bert, config: {hidden_size: 64}}
  hyperparameters: {learning_rate: 0.0005, batch_size: 32, epochs: 2}
  evaluation: {metrics: [accuracy]}
"""
    spec = dataset(pii={"columns": {"email": action}, "salt": "${env:PII_SALT_TEST}"})
    root = project({"specs/x.yaml": spec, "specs/model.yaml": model}, config=CONFIG)
    checked = mlspec(root, "validate")
    assert checked.code == 1, checked.output
    assert "error[MLS205] `email` is a PII column of Dataset/x: no model may use it as a feature" in checked.output
    assert "spec.features[1]" in checked.output

    (root / "specs/model.yaml").write_text(model.replace("[text, email]", "[text]"))
    assert mlspec(root, "validate").code == 0


# --------------------------------------------------------------------------------------------------
# the bundled example repo


def test_the_bundled_repo_applies_and_converges(
    mlspec: Mlspec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Task/make-data runs `python scripts/make_data.py`: the interpreter running the tests must be on PATH."""
    pytest.importorskip("torch")  # the bundled repo trains its Models
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    root = tmp_path / "bundled"
    shutil.copytree(REPO / "specs", root / "specs")
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
    api = root / "specs" / "serving" / "sentiment-api.yaml"  # its own port: the README's run may hold 3311
    port = _free_port()
    api.write_text(api.read_text().replace("port: 3311", f"port: {port}"))
    try:
        _bundled(mlspec, root, tmp_path, port)
    finally:
        mlspec(root, "serve", "stop", "Service/sentiment-api")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bundled(mlspec: Mlspec, root: Path, tmp_path: Path, port: int) -> None:
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert f"Service/sentiment-api: http://127.0.0.1:{port}\n  curl -s -X POST http://127.0.0.1:{port}/predict" in (
        applied.out), applied.out
    again = mlspec(root, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.out and "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete" in again.out
    for name in ("reviews", "customers"):
        out = outputs(mlspec, root, f"Dataset/{name}")
        assert out["rows"] == 4000 and set(out["splits"]) == {"train", "validation", "test"}
        assert sum(s["rows"] for s in out["splits"].values()) == 4000
        for split in out["splits"].values():
            assert sha256(on_disk(root, split["uri"])) == split["digest"]
    assert "email" not in outputs(mlspec, root, "Dataset/reviews")["columns"]
    models = {m["address"]: m for m in mlspec(root, "models", "list", "--format", "json").json()["models"]}
    assert set(models) == {"Model/churn", "Model/sentiment"}  # trained, gated and registered on the CPU
    assert all(m["champion"] == 1 and m["latest_passed"] for m in models.values()), models

    # Early cutoff: a stricter check that the same rows pass re-validates the Dataset and trains nothing.
    spec = root / "specs" / "data" / "reviews.yaml"
    spec.write_text(spec.read_text().replace("min_rows: 1000", "min_rows: 1500"))
    plan = mlspec(root, "plan")
    assert "Model/sentiment  replace (conditional: runs only if Dataset/reviews publishes something new)" in plan.out
    edited = mlspec(root, "apply", "-y")
    assert edited.code == 0, edited.output
    assert ("5 steps cut off: Dataset/reviews came out unchanged (Model/sentiment, Optimization/sentiment-onnx, "
            "Service/sentiment-api, Monitor/sentiment-drift, Prompt/review-triage kept what they had)") in edited.out, \
        edited.out
    models = {m["address"]: m for m in mlspec(root, "models", "list", "--format", "json").json()["models"]}
    assert models["Model/sentiment"]["versions"] == 1  # not retrained
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0

    # The champion's files as a directory that transformers loads directly, each checked on the way out.
    pulled = mlspec(root, "artifacts", "pull", "sentiment", "--to", tmp_path / "sentiment-model")
    assert pulled.code == 0, pulled.output
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "sentiment-model", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "sentiment-model", local_files_only=True)
    assert model.config.num_labels == 2 and tokenizer("great product")["input_ids"]


def test_a_moved_repo_plans_no_change(mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path) -> None:
    """Artifact URIs are relative to the repo: another checkout directory is not drift."""
    root = project({"specs/x.yaml": dataset(), "data/x.csv": csv_text(["id"], [[i] for i in range(20)])},
                   config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    plan = mlspec(moved, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output


def test_infinite_and_float_spanning_values_are_profiled(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    rows = [[1, "inf"], [2, "1e308"], [3, "-1e308"], [4, "2"]]
    root = project({"specs/x.yaml": dataset(), "data/x.csv": csv_text(["id", "x"], rows)}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    profile = json.loads(on_disk(root, outputs(mlspec, root)["profile"]["uri"]).read_text())
    assert profile["columns"]["x"]["nonfinite"] == 1 and profile["columns"]["x"]["max"] == 1e308


def test_an_empty_split_still_gets_a_file_with_the_columns(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = dataset(splits={"ratios": {"train": 0.999, "test": 0.001}})
    root = project({"specs/x.yaml": spec, "data/x.csv": csv_text(["id"], [[i] for i in range(10)])}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    test = outputs(mlspec, root)["splits"]["test"]
    assert test["rows"] == 0 and pq.read_table(on_disk(root, test["uri"])).column_names == ["id"]
