"""The Prompt kind through the command line and `mlspec.prompts.render`: versions tested and registered,
aliases moved by the gate, a failing suite held with its failures shown, repeats judged by their
Wilson bound, python targets and checks from the spec repo, a target that is down counted as errors
(not failures), A/B splits by key, and rollback. Targets here are the echo target, python functions
and a loopback HTTP server; the OpenAI-compatible path against a real model is test_prompt_openai.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec import prompts
from tests.cli import Result

Mlspec = Callable[..., Result]

PROMPT = """apiVersion: mlspec/v1
kind: Prompt
metadata: {{name: {name}}}
spec:
  template: |
{template}
  variables:
    review: {{type: string}}
    team: {{type: string, required: false, default: support}}
  target: {target}
  tests:
{tests}
  gate: {gate}
  aliases: [production]
{extra}"""
TEMPLATE = "    Triage for the {{ team }} team:\n    {{ review }}"
TESTS = """    - name: mentions-the-team
      vars: {review: "great product"}
      assert: [{type: contains, value: "support team"}, {type: icontains, value: GREAT}]
    - name: short
      vars: {review: "ok", team: billing}
      assert: [{type: max-length, value: 200}, {type: not-contains, value: support}]"""


def prompt(name: str = "triage", template: str = TEMPLATE, target: str = "{echo: true}", tests: str = TESTS,
           gate: str = "{min_pass_rate: 1.0}", extra: str = "") -> str:
    return PROMPT.format(name=name, template=template, target=target, tests=tests, gate=gate, extra=extra)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    prompts.clear_cache()


def outputs(mlspec: Mlspec, root: Path, address: str = "Prompt/triage") -> dict[str, Any]:
    return dict(mlspec(root, "state", "show", address, "--format", "json").json()["outputs"])


def test_an_applied_prompt_is_rendered_from_state_not_from_the_work_tree(
        mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/triage.yaml": prompt()})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "2 of 2 case(s) passed" in applied.err
    rendered = prompts.render("triage", root=root, review="broke after a day")
    assert rendered.text == "Triage for the support team:\nbroke after a day\n"
    assert (rendered.address, rendered.version, rendered.alias) == ("Prompt/triage", 1, "production")
    assert rendered.digest == outputs(mlspec, root)["digest"]

    (root / "specs" / "triage.yaml").write_text(prompt(template="    Edited, not applied: {{ review }} {{ team }}"))
    prompts.clear_cache()
    assert prompts.render("triage", root=root, review="x").text.startswith("Triage for")  # state, not the tree

    with pytest.raises(prompts.PromptError, match=r"v1: `tema` is not one of its variables \(did you mean `team`\?\); `review` is required"):
        prompts.render("triage", root=root, tema="billing")
    with pytest.raises(prompts.PromptError, match=r"`review` must be string, not int"):
        prompts.render("triage", root=root, review=3)
    with pytest.raises(prompts.PromptError, match=r"no alias `staging` \(its aliases: champion, production\)"):
        prompts.render("triage", alias="staging", root=root, review="x")


def test_a_template_change_plans_a_replace_with_its_diff_and_moves_production(
        mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/triage.yaml": prompt()})
    assert mlspec(root, "apply", "-y").code == 0
    changed = TEMPLATE.replace("Triage for", "Please triage, for")
    (root / "specs" / "triage.yaml").write_text(prompt(template=changed))
    plan = mlspec(root, "plan")
    assert "-/+ Prompt/triage  replace" in plan.out, plan.out
    assert "    -Triage for the {{ team }} team:" in plan.out and "+Please triage, for the {{ team }} team:" in plan.out
    assert "2 test case(s), 2 run(s) against the echo target; moves production when 100% of cases pass" in plan.out
    comment = mlspec(root, "plan", "--format", "markdown").out
    assert "```diff" in comment and "+Please triage, for the {{ team }} team:" in comment
    assert mlspec(root, "apply", "-y").code == 0
    assert prompts.render("triage", root=root, review="x").text.startswith("Please triage")
    shown = mlspec(root, "prompts", "show", "triage")
    assert "v2 [champion, production]" in shown.out and "v1 " in shown.out, shown.out
    diff = mlspec(root, "prompts", "diff", "triage")
    assert "-Triage for the {{ team }} team:" in diff.out and "+Please triage, for" in diff.out, diff.out
    assert mlspec(root, "prompts", "list").out.startswith("Prompt/triage  2 version(s)")

    rolled = mlspec(root, "rollback", "Prompt/triage")
    assert rolled.code == 0, rolled.output
    prompts.clear_cache()
    assert prompts.render("triage", root=root, review="x").version == 1  # production followed the champion back
    assert mlspec(root, "promote", "Prompt/triage", "2", "--alias", "production", "--reason", "v2 is fine").code == 0
    prompts.clear_cache()
    assert prompts.render("triage", root=root, review="x").version == 2


def test_a_failing_suite_is_held_as_candidate_with_the_prompt_and_output_shown(
        mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/triage.yaml": prompt()})
    assert mlspec(root, "apply", "-y").code == 0
    failing = TESTS.replace('value: "support team"', 'value: "sales team"')
    (root / "specs" / "triage.yaml").write_text(prompt(tests=failing))
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "1 of 2 case(s) passed (50%, gate 100%), 1 failed" in applied.err
    assert "`mentions-the-team` run 1: contains: expected it to contain 'sales team'" in applied.err
    out = outputs(mlspec, root)
    assert out["aliases"] == {"candidate": 2, "champion": 1, "production": 1}
    assert "gate `min_pass_rate 1` failed (1 of 2 cases passed (50.0% < 100%))" in out["held"]
    failure = out["tests"]["failures"][0]
    assert failure["prompt"] == "Triage for the support team:\ngreat product\n" and failure["output"] == failure["prompt"]
    assert prompts.render("triage", root=root, review="x").version == 1  # production did not move


def test_repeats_are_judged_by_the_wilson_bound_of_their_pass_rate(mlspec: Mlspec,
                                                                    project: Callable[..., Path]) -> None:
    # right 3 times in 4 for one review, 1 in 2 for the other: both passed many runs, one is convincing
    flaky = ("import collections\n_runs = collections.Counter()\n"
             "def answer(prompt, settings):\n    n = _runs[prompt]\n    _runs[prompt] += 1\n"
             "    every = 4 if 'usually' in prompt else 2\n    return 'no' if n % every == 0 else 'yes'\n")
    tests = """    - name: usually-right
      vars: {review: "usually"}
      assert: [{type: equals, value: "yes"}]
      repeat: 20
    - name: coin-flip
      vars: {review: "coin"}
      assert: [{type: equals, value: "yes"}]
      repeat: 20"""
    root = project({"specs/triage.yaml": prompt(template="    {{ review }} {{ team }}", tests=tests,
                                                target="{python: 'scripts/flaky.py:answer', concurrency: 1}",
                                                gate="{min_pass_rate: 0.5, case_pass_rate: 0.5}"),
                    "scripts/flaky.py": flaky})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    cases = {c["name"]: c for c in outputs(mlspec, root)["tests"]["per_case"]}
    assert (cases["usually-right"]["passes"], cases["usually-right"]["verdict"]) == (15, "passed")
    assert cases["usually-right"]["lower_bound"] == pytest.approx(0.531, abs=0.001)
    assert (cases["coin-flip"]["passes"], cases["coin-flip"]["verdict"]) == (10, "failed")  # 10 passes prove little
    assert cases["coin-flip"]["lower_bound"] == pytest.approx(0.299, abs=0.001)


def test_python_checks_and_json_schemas(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    answer = "import json\ndef answer(prompt, settings):\n    return json.dumps({'label': 'positive', 'len': len(prompt)})\n"
    checks = "def short(output, context):\n    return {'pass': len(output) < 100, 'score': 0.9, 'reason': 'too long'}\n"
    tests = """    - name: structured
      vars: {review: "x"}
      assert:
        - {type: is-json, value: {type: object, required: [label], properties: {label: {enum: [positive, negative]}}}}
        - {type: python, value: "scripts/checks.py:short"}
    - name: not-json-asked-for-json
      vars: {review: "x"}
      assert: [{type: is-json, value: {type: object, required: [missing]}}]"""
    root = project({"specs/triage.yaml": prompt(template="    {{ review }} {{ team }}", tests=tests,
                                                target="{python: 'scripts/answer.py:answer'}",
                                                gate="{min_pass_rate: 0.5}"),
                    "scripts/answer.py": answer, "scripts/checks.py": checks})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root)
    verdicts = {c["name"]: c["verdict"] for c in out["tests"]["per_case"]}
    assert verdicts == {"structured": "passed", "not-json-asked-for-json": "failed"}
    assert "JSON, but not of the schema: the document: 'missing' is a required property" in \
        out["tests"]["failures"][0]["reasons"][0]


def test_a_target_that_is_down_is_an_error_not_a_failure(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe closes
    target = (f"{{openai: {{base_url: 'http://127.0.0.1:{port}/v1', model: tiny, api_key: '${{env:TINY_KEY}}', "
              "retries: 2, timeout_s: 2}}")
    root = project({"specs/triage.yaml": prompt(target=target)})
    applied = mlspec(root, "apply", "-y")
    assert applied.code != 0
    assert "spec.target.openai.api_key names ${env:TINY_KEY}, which is not set here" in applied.err
    import os

    os.environ["TINY_KEY"] = "sk-very-secret-key"
    try:
        applied = mlspec(root, "apply", "-y")
    finally:
        del os.environ["TINY_KEY"]
    assert applied.code != 0
    assert "no test case could be run" in applied.err and f"http://127.0.0.1:{port}/v1 did not answer" in applied.err
    assert "after 3 attempt(s)" in applied.err and "sk-very-secret-key" not in applied.output


def test_an_ab_split_shares_the_alias_by_key(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/triage.yaml": prompt()})
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs" / "triage.yaml").write_text(prompt(template=TEMPLATE.replace("Triage", "B: triage"),
                                                       extra="  split: {share: 0.3}\n"))
    assert "moves production split 70%/30% with the version it holds" in mlspec(root, "plan").out
    assert mlspec(root, "apply", "-y").code == 0
    seen = {user: prompts.render("triage", root=root, key=user, review="x").version for user in range(2000)}
    share = sum(1 for v in seen.values() if v == 2) / len(seen)
    assert 0.25 < share < 0.35, share
    assert all(prompts.render("triage", root=root, key=u, review="x").version == v for u, v in list(seen.items())[:50])
    assert prompts.render("triage", root=root, review="x").version == 1  # no key: the larger share
    assert json.loads(json.dumps(outputs(mlspec, root)["split"])) == {"alias": "production", "from": 1, "share": 0.3}


def test_a_template_file_is_checked_at_its_own_lines(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = prompt().replace("  template: |\n" + TEMPLATE + "\n", "  template_file: triage.j2\n")
    root = project({"specs/triage.yaml": spec, "specs/triage.j2": "Triage:\n{{ reveiw }} for {{ team }}\n"})
    plan = mlspec(root, "plan")
    assert plan.code == 1
    assert "triage.j2:2:4: the template uses `reveiw`, which is not declared" in plan.err, plan.err
    assert "did you mean `review`?" in plan.err
    (root / "specs" / "triage.j2").write_text("Triage for the {{ team }} team:\n{{ review }}\n")
    assert mlspec(root, "apply", "-y").code == 0
    assert prompts.render("triage", root=root, review="x").text == "Triage for the support team:\nx\n"
