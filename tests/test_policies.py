"""Policies of mlspec.yaml, reported like any diagnostic: with a code, a position and a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli import Result

Mlspec = Callable[..., Result]

TASK = 'apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}, owner: {owner}{labels}}}\nspec:\n  cmd: ["true"]\n'
POLICIES = """specs: ['specs/**/*.yaml']
policies:
  owners:
    - match: ["*"]
      teams: [team-platform]
    - match: ["Task/train*"]
      teams: [team-ml]
  required_labels:
    - match: ["Task/*"]
      labels: [tier]
  protect:
    - labels: {tier: gold}
"""


def task(name: str, owner: str, labels: str = "") -> str:
    return TASK.format(name=name, owner=owner, labels=f", labels: {{{labels}}}" if labels else "")


def test_owner_teams_and_required_labels_are_checked_with_positions(mlspec: Mlspec,
                                                                     project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "team-platform", "tier: gold"),
                    "specs/train.yaml": task("train", "team-platform")}, config=POLICIES)
    result = mlspec(root, "validate")
    assert result.code == 1
    assert ("specs/train.yaml:3:32: error[MLS400] Task/train has `team-platform`; the owners policy for "
            "`Task/train*` allows team-ml") in result.out
    assert "specs/train.yaml:3:1: error[MLS401] Task/train lacks the label tier required of `Task/*`" in result.out
    assert "specs/a.yaml" not in result.out


def test_a_changed_policy_is_not_answered_from_the_cache(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "team-platform", "tier: gold")}, config=POLICIES)
    assert mlspec(root, "validate").code == 0
    (root / "mlspec.yaml").write_text(POLICIES.replace("teams: [team-platform]", "teams: [team-data]"))
    assert "MLS400" in mlspec(root, "validate").out


def test_a_protected_resource_is_deleted_only_with_allow_destroy(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "team-platform", "tier: gold"),
                    "specs/b.yaml": task("b", "team-platform", "tier: silver")}, config=POLICIES)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs" / "a.yaml").unlink()
    refused = mlspec(root, "plan", "--prune")
    assert refused.code == 1 and "MLS404" in refused.err and "the plan deletes Task/a" in refused.err
    assert mlspec(root, "plan", "--prune", "--allow-destroy").code == 0
