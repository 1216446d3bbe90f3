"""The Prompt kind's figures (issue 17), each against a peer in the same process or session:

- `mlspec.prompts.render` from state, warm: per-call latency, and the ratio to plain Jinja2 rendering
  the same template (compiled once, no sandbox, no type checks), interleaved rounds;
- 1,000 test cases against the echo target: the apply's test phase and the whole `mlspec apply`;
- test cases against the bundled Service (the sentiment model behind BentoML, through its router),
  batching on and off, at the target's default concurrency (8) and at 32: cases per second.

    python benchmarks/prompt.py [--rounds 7] [--service-cases 400] [--skip-service]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "Classify this review for the {{ team }} team, in one word:\n{{ review }}\n"
SPEC = """apiVersion: mlspec/v1
kind: Prompt
metadata: {{name: {name}}}
spec:
  template: |
    Classify this review for the {{{{ team }}}} team, in one word:
    {{{{ review }}}}
  variables:
    review: {{type: string}}
    team: {{type: string, required: false, default: support}}
  target: {target}
  tests:
{tests}
  gate: {{min_pass_rate: 0.0}}
  aliases: [production]
"""


def cases(n: int, check: str) -> str:
    return "\n".join(f'    - {{name: case-{i}, vars: {{review: "kettle: love it, works perfectly {i}"}}, '
                     f"assert: [{check}]}}" for i in range(n))


def mlspec(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run([sys.executable, "-m", "mlspec", *args], cwd=root, env=env, capture_output=True, text=True,
                          check=True)


def tests_of(root: Path, address: str) -> dict[str, Any]:
    shown = json.loads(mlspec(root, "state", "show", address, "--format", "json").stdout)
    return dict(shown["outputs"]["tests"])


def render_figures(root: Path, rounds: int) -> None:
    import jinja2

    from mlspec import prompts

    prompts.render("triage", root=root, review="warm")  # read from state once; then warm
    plain = jinja2.Environment(keep_trailing_newline=True).from_string(TEMPLATE)
    assert plain.render(review="x", team="support") == prompts.render("triage", root=root, review="x").text
    number = 20_000
    ours, theirs = [], []
    for _ in range(rounds):  # interleaved: the machine's drift hits both alike
        ours.append(timeit.timeit(lambda: prompts.render("triage", root=root, review="great product"),
                                  number=number) / number)
        theirs.append(timeit.timeit(lambda: plain.render(review="great product", team="support"),
                                    number=number) / number)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"render() warm: {a * 1e6:.1f} µs per call (range {min(ours) * 1e6:.1f}-{max(ours) * 1e6:.1f}); plain "
          f"Jinja2: {b * 1e6:.1f} µs; ratio {a / b:.2f}x (goal <= 50 µs and <= 1.2x), median of {rounds} rounds of "
          f"{number:,} calls")


def echo_figures(scratch: Path) -> None:
    root = scratch / "echo"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "triage.yaml").write_text(
        SPEC.format(name="triage", target="{echo: true}",
                    tests=cases(1000, "{type: contains, value: support}, {type: max-length, value: 400}")))
    started = time.perf_counter()
    mlspec(root, "apply", "-y")
    whole = time.perf_counter() - started
    found = tests_of(root, "Prompt/triage")
    print(f"1,000 cases against the echo target: {found['passed']} passed; test phase {found['seconds']:.3f} s, "
          f"whole `mlspec apply` {whole:.2f} s (goal <= 2 s)")


def service_figures(scratch: Path, n: int) -> None:
    root = scratch / "service"
    root.mkdir()
    for part in ("specs", "scripts"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
    api = root / "specs" / "serving" / "sentiment-api.yaml"
    text = api.read_text().replace("port: 3311", "port: 3381")
    api.write_text(text)
    (root / "specs" / "serving" / "sentiment-plain.yaml").write_text(
        text.replace("name: sentiment-api", "name: sentiment-plain").replace("port: 3381", "port: 3382")
        .replace("batching: {max_batch_size: 32, max_latency_ms: 20}", "batching: {enabled: false}"))
    check = "{type: contains-any, value: [positive, negative]}"
    for service in ("sentiment-api", "sentiment-plain"):
        for concurrency in (8, 32):
            name = f"bench-{service.split('-')[1]}-{concurrency}"
            (root / "specs" / "serving" / f"{name}.yaml").write_text(
                SPEC.format(name=name, target=f"{{service: Service/{service}, concurrency: {concurrency}}}",
                            tests=cases(n, check)))
    try:
        mlspec(root, "apply", "-y", "--parallelism", "1")
        for service, label in (("api", "batching on"), ("plain", "batching off")):
            for concurrency in (8, 32):
                found = tests_of(root, f"Prompt/bench-{service}-{concurrency}")
                print(f"{n} cases against the bundled Service, {label}, {concurrency} in flight: "
                      f"{found['runs'] / found['seconds']:.0f} cases/s ({found['passed']} passed)")
    finally:
        for address in ("Service/sentiment-api", "Service/sentiment-plain"):
            subprocess.run([sys.executable, "-m", "mlspec", "serve", "stop", address], cwd=root, capture_output=True,
                           check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--service-cases", type=int, default=400)
    parser.add_argument("--skip-service", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "render"
        (root / "specs").mkdir(parents=True)
        (root / "specs" / "triage.yaml").write_text(
            SPEC.format(name="triage", target="{echo: true}", tests=cases(1, "{type: contains, value: support}")))
        mlspec(root, "apply", "-y")
        print(f"# {os.cpu_count()} CPUs\n")
        render_figures(root, args.rounds)
        echo_figures(Path(scratch))
        if not args.skip_service:
            service_figures(Path(scratch), args.service_cases)


if __name__ == "__main__":
    main()
