"""The saved-plan file (`mlspec plan -out FILE`, `mlspec apply FILE`): the plan's JSON, written
atomically, read back with every way it can be wrong named. The format is the plan's own
(mlspec/plan/model.py, docs/plan-format.md); this is where it meets the disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlspec.errors import MlspecError
from mlspec.plan.model import Plan

NO_STATE = ""  # the lineage of a plan made before the first apply: the first state accepts it


def save(plan: Plan, path: Path) -> None:
    """Atomically: a half-written plan file must never be applied."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(plan.to_json(), indent=1, ensure_ascii=False, default=str))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise MlspecError(f"cannot write the plan to {path}: {err.strerror}") from err


def load(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise MlspecError(f"cannot read the plan {path}: {err.strerror}") from err
    except ValueError as err:
        raise MlspecError(f"{path} is not a saved mlspec plan (not JSON: {err})") from err
    if not isinstance(data, dict) or "steps" not in data or "lineage" not in data:
        raise MlspecError(f"{path} is not a saved mlspec plan (make one with `mlspec plan -out {path}`)")
    try:
        return Plan.from_json(data)
    except (KeyError, TypeError, ValueError) as err:
        raise MlspecError(f"{path} is a damaged mlspec plan ({type(err).__name__}: {err}); make a new one") from err
