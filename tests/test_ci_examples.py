"""The CI examples work as written: their plan and apply jobs' commands run in a real git repository
with an origin, a main branch and a feature branch, the way a runner would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

MLSPEC_BIN = str(Path(sys.executable).parent)
TASK = 'apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}}}\nspec:\n  cmd: ["true"]\n  params: {{lr: {lr}}}\n'


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def origin_of(tmp_path: Path, config: str, spec: str, ignore: str = "") -> Path:
    """A bare origin whose main holds mlspec.yaml, specs/a.yaml and the committed JSON Schemas."""
    seed = tmp_path / "seed"
    (seed / "specs").mkdir(parents=True)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "config", "user.email", "dev@example.com")
    git(seed, "config", "user.name", "Dev")
    (seed / ".gitignore").write_text(".mlspec/\nplan.md\nplan.err\nplan.code\n" + ignore)
    (seed / "mlspec.yaml").write_text(config)
    (seed / "specs" / "a.yaml").write_text(spec)
    subprocess.run([str(Path(MLSPEC_BIN) / "mlspec"), "-C", str(seed), "schema"], check=True, capture_output=True)
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "main")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    return origin


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """origin (bare) with main; a clone on a feature branch that edits one spec and adds another."""
    origin = origin_of(tmp_path, 'specs: ["specs/**/*.yaml"]\n', TASK.format(name="a", lr=0.1))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "config", "user.email", "dev@example.com")
    git(work, "config", "user.name", "Dev")
    git(work, "checkout", "-q", "-b", "feature")
    (work / "specs" / "a.yaml").write_text(TASK.format(name="a", lr=0.2))
    (work / "specs" / "b.yaml").write_text(TASK.format(name="b", lr=0.3))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "feature")
    return work


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{MLSPEC_BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def run_script(script: str, cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)


def load(name: str) -> Any:
    return YAML(typ="safe").load((REPO / "examples" / "ci" / name).read_text())


def shell_steps(job: dict[str, Any]) -> list[str]:
    """The job's `run` steps as a runner would run them, but for installing (this mlspec is installed)."""
    return [s["run"] for s in job["steps"] if "run" in s and "pip install" not in s["run"]
            and s.get("name") != "verdict"]


def test_the_github_plan_job_comments_a_plan_of_the_branch(clone: Path, tmp_path: Path) -> None:
    workflow = load("github-actions.yml")
    outputs, summary = tmp_path / "github-output", tmp_path / "summary.md"
    for script in shell_steps(workflow["jobs"]["plan"]):
        done = run_script(script.replace("${{ github.base_ref }}", "main"), clone,
                          env(GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary)))
        assert done.returncode == 0, done.stderr
    plan = (clone / "plan.md").read_text()
    assert "Spec changes from origin/main" in plan and "`Task/b`" in plan and "`spec.params.lr`" in plan
    assert "Plan: 2 to create" in plan and summary.read_text() == plan  # a fork's pull request reads it there
    assert outputs.read_text().split() == ["code=2", "changes=true"]
    comment = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("name") == "comment")
    assert "updateComment" in comment["with"]["script"] and "head.repo.full_name" in comment["if"]
    assert git(clone, "status", "--porcelain") == ""  # nothing checked out or written but ignored files


def test_the_github_plan_job_reports_invalid_specs_then_fails(clone: Path, tmp_path: Path) -> None:
    """The comment says what is wrong (it is posted whatever the plan's verdict); the verdict fails the job."""
    broken = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: b}\nspec: {cmnd: []}\n"
    (clone / "specs" / "b.yaml").write_text(broken)
    job = load("github-actions.yml")["jobs"]["plan"]
    plan = next(s["run"] for s in job["steps"] if s.get("name") == "plan")
    outputs = tmp_path / "o"
    done = run_script(plan.replace("${{ github.base_ref }}", "main"), clone,
                      env(GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(tmp_path / "s")))
    assert done.returncode == 0, done.stderr
    text = (clone / "plan.md").read_text()
    assert text.startswith("### mlspec plan failed") and "MLS101" in text
    assert "code=1" in outputs.read_text()
    verdict = next(s for s in job["steps"] if s.get("name") == "verdict")
    assert verdict["if"] == "steps.plan.outputs.code == '1'" and verdict["run"] == "exit 1"


def test_the_github_apply_job_applies_main_one_at_a_time(clone: Path) -> None:
    workflow = load("github-actions.yml")
    job = workflow["jobs"]["apply"]
    assert job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is False
    assert any(s.get("with", {}).get("fetch-depth") == 0 for s in job["steps"])
    git(clone, "checkout", "-q", "main")
    git(clone, "merge", "-q", "--ff-only", "feature")
    assert job["environment"] == "production"  # an approval gate, where reviewers are required
    for script in shell_steps(job):
        done = run_script(script, clone, env())
        assert done.returncode == 0, done.stderr
    again = run_script("mlspec plan --detailed-exitcode", clone, env())
    assert again.returncode == 0, again.stdout


def test_the_gitlab_plan_job_runs_as_written(clone: Path) -> None:
    pipeline = load("gitlab-ci.yml")
    assert pipeline["apply"]["resource_group"]
    script = "\n".join(pipeline["plan"]["script"])
    done = run_script(script, clone, env(CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main"))
    assert done.returncode == 0, done.stderr
    assert "Plan: 2 to create" in (clone / "plan.md").read_text()
    assert "MLSPEC_GITLAB_TOKEN" in script and "<!-- mlspec-plan -->" in script  # a sticky note, when it may post


def test_mlspec_init_writes_the_github_workflow_installing_this_mlspec(tmp_path: Path) -> None:
    from mlspec.cli import main
    from mlspec.scaffold import EXAMPLE_INSTALL

    wanted = "mlspec[torch] @ git+https://github.com/acme/mlspec@0123abc"
    assert main(["init", str(tmp_path / "repo"), "--install", wanted]) == 0
    written = (tmp_path / "repo" / ".github" / "workflows" / "mlspec.yml").read_text()
    example = (REPO / "examples" / "ci" / "github-actions.yml").read_text()
    assert written == example.replace(EXAMPLE_INSTALL, wanted)
    assert main(["init", str(tmp_path / "default")]) == 0  # by default: where this mlspec came from
    line = next(x for x in (tmp_path / "default" / ".github" / "workflows" / "mlspec.yml").read_text().splitlines()
                if "MLSPEC_INSTALL:" in x)
    assert " @ " in line, "a direct reference: the bare name `mlspec` on the index is another project"


@pytest.mark.parametrize(("name", "schema"), [("github-actions.yml", "vendor.github-workflows"),
                                              ("gitlab-ci.yml", "vendor.gitlab-ci")])
def test_examples_pass_check_jsonschemas_bundled_ci_schemas(name: str, schema: str) -> None:
    done = subprocess.run([str(Path(MLSPEC_BIN) / "check-jsonschema"), "--builtin-schema", schema,
                           str(REPO / "examples" / "ci" / name)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


WRITES = ('apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}}}\nspec:\n'
          '  cmd: ["{py}", "-c", "open(\'{name}.out\', \'w\').write(\'{lr}\')"]\n  outs: [{name}.out]\n'
          '  params: {{lr: {lr}}}\n')


@pytest.mark.slow
def test_two_clones_share_one_database_and_one_bucket_through_the_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main applied by one runner; a fresh clone of a pull request plans only what the branch changes,
    and a fresh clone of main plans nothing: state and outs are the shared backends', not a runner's."""
    pgserver = pytest.importorskip("pgserver")
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    database = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        shared = {"MLSPEC_STATE_URL": database.get_uri(), "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                  "AWS_ACCESS_KEY_ID": "ci", "AWS_SECRET_ACCESS_KEY": "ci", "AWS_DEFAULT_REGION": "us-east-1",
                  "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}
        boto3.client("s3", endpoint_url=shared["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="ci", aws_secret_access_key="ci").create_bucket(Bucket="team-artifacts")
        config = ('specs: ["specs/**/*.yaml"]\nstate: {backend: postgres, url: "${env:MLSPEC_STATE_URL}", key: team}\n'
                  "artifacts: {url: 's3://team-artifacts/specs'}\n")
        origin = origin_of(tmp_path, config, WRITES.format(name="a", lr=0.1, py=sys.executable), "*.out\n")
        workflow = load("github-actions.yml")

        runner = tmp_path / "runner-main"  # the apply job, on main
        git(tmp_path, "clone", "-q", str(origin), str(runner))
        for script in shell_steps(workflow["jobs"]["apply"]):
            done = run_script(script, runner, env(**shared))
            assert done.returncode == 0, done.stdout + done.stderr

        branch = tmp_path / "runner-pr"  # the plan job, on a pull request, another fresh clone
        git(tmp_path, "clone", "-q", str(origin), str(branch))
        git(branch, "config", "user.email", "dev@example.com")
        git(branch, "config", "user.name", "Dev")
        git(branch, "checkout", "-q", "-b", "feature")
        (branch / "specs" / "b.yaml").write_text(WRITES.format(name="b", lr=0.2, py=sys.executable))
        git(branch, "add", "-A")
        git(branch, "commit", "-qm", "feature")
        outputs, summary = tmp_path / "out", tmp_path / "summary"
        for script in shell_steps(workflow["jobs"]["plan"]):
            done = run_script(script.replace("${{ github.base_ref }}", "main"), branch,
                              env(**shared, GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary)))
            assert done.returncode == 0, done.stdout + done.stderr
        plan = (branch / "plan.md").read_text()
        assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 1 unchanged" in plan, plan

        fresh = tmp_path / "runner-main-2"  # main again, on a runner that has nothing of the first one
        git(tmp_path, "clone", "-q", str(origin), str(fresh))
        again = run_script("mlspec plan --detailed-exitcode", fresh, env(**shared))
        assert again.returncode == 0, again.stdout + again.stderr
        pulled = run_script("mlspec pull", fresh, env(**shared))
        assert pulled.returncode == 0 and (fresh / "a.out").read_text() == "0.1", pulled.stdout + pulled.stderr
    finally:
        s3.stop()
        database.cleanup()
