"""A Prompt's test suite: every case rendered, sent to the target (`repeat` times, uncached), checked,
and judged; then the gate. A case that could not be run (the target down after its retries) is an
error, reported apart from the cases whose assertions failed.

With `repeat: N`, a case passes when the Wilson lower bound (95%) of its pass rate reaches the gate's
`case_pass_rate`, not when it passed once: a sampling model that is right 3 times in 5 has not shown
that it is usually right.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlspec.sdk.prompts import TemplateError, bind, render, wilson_lower
from mlspec_prompt.checks import Answer, check, scored
from mlspec_prompt.targets import Call, Unreachable

FAILURES_KEPT = 20  # failures shown (rendered prompt, output, reasons); the rest are counted


@dataclass
class Case:
    name: str
    runs: int
    passes: int = 0
    errors: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def verdict(self, case_pass_rate: float) -> str:
        """"error" when any run could not be made (the case proves nothing either way)."""
        if self.errors:
            return "error"
        if self.runs == 1:
            return "passed" if self.passes == 1 else "failed"
        return "passed" if wilson_lower(self.passes, self.runs) >= case_pass_rate else "failed"


@dataclass(frozen=True)
class Report:
    cases: list[dict[str, Any]]
    passed: int
    failed: int
    errors: int
    runs: int
    pass_rate: float
    seconds: float
    failures: list[dict[str, Any]]
    error_messages: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"cases": len(self.cases), "passed": self.passed, "failed": self.failed, "errors": self.errors,
                "runs": self.runs, "pass_rate": round(self.pass_rate, 6), "seconds": round(self.seconds, 3),
                "failures": self.failures, "error_messages": self.error_messages[:10],
                "per_case": self.cases[:200]}


def run(tests: Sequence[Mapping[str, Any]], template: str, declared: Mapping[str, Mapping[str, Any]], call: Call,
        case_pass_rate: float, concurrency: int, python: Callable[[str], Callable[..., Any]],
        meter: Callable[[int, int], None] | None = None) -> Report:
    started = time.perf_counter()
    cases = [Case(str(t["name"]), int(t.get("repeat") or 1)) for t in tests]
    jobs = [(i, r) for i, t in enumerate(tests) for r in range(cases[i].runs)]
    prompts: list[str | None] = []
    for test in tests:
        try:
            prompts.append(render(template, bind(declared, test.get("vars") or {})))
        except TemplateError as err:
            prompts.append(None)
            cases[len(prompts) - 1].errors.append(f"the template cannot render this case: {err}")

    def one(job: tuple[int, int]) -> tuple[int, int, Answer | None, str | None]:
        i, r = job
        prompt = prompts[i]
        if prompt is None:
            return i, r, None, None
        try:
            return i, r, call(prompt), None
        except Unreachable as err:
            return i, r, None, str(err)

    if concurrency <= 1 or len(jobs) <= 1:
        answers = map(one, jobs)
        results = _judged(answers, tests, prompts, cases, python, meter, len(jobs))
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
            results = _judged(pool.map(one, jobs), tests, prompts, cases, python, meter, len(jobs))
    done = results
    verdicts = [c.verdict(case_pass_rate) for c in cases]
    passed = verdicts.count("passed")
    errors = verdicts.count("error")
    failures = [f for c in cases for f in c.failures][:FAILURES_KEPT]
    per_case = [{"name": c.name, "verdict": v, "runs": c.runs, "passes": c.passes,
                 **({"lower_bound": round(wilson_lower(c.passes, c.runs), 4)}
                    if c.runs > 1 else {}),
                 **({"errors": len(c.errors)} if c.errors else {})} for c, v in zip(cases, verdicts, strict=True)]
    messages = list(dict.fromkeys(e for c in cases for e in c.errors))
    return Report(per_case, passed, len(cases) - passed - errors, errors, done,
                  passed / len(cases) if cases else 1.0, time.perf_counter() - started, failures, messages)


def _judged(answers: Any, tests: Sequence[Mapping[str, Any]], prompts: Sequence[str | None], cases: list[Case],
            python: Callable[[str], Callable[..., Any]], meter: Callable[[int, int], None] | None, total: int) -> int:
    count = 0
    for i, r, answer, error in answers:
        count += 1
        case, test = cases[i], tests[i]
        if meter is not None and (count % 25 == 0 or count == total):
            meter(count, total)
        if error is not None:
            case.errors.append(error)
            continue
        if answer is None:
            continue
        context = {"vars": dict(test.get("vars") or {}), "prompt": prompts[i], "test": case.name}
        outcomes = [(check(str(a["type"]), a.get("value"), a.get("threshold"), answer, context, python),
                     float(a.get("weight", 1.0))) for a in test["assert"]]
        ok, score = scored(outcomes, test.get("threshold"))
        if ok:
            case.passes += 1
        elif len(case.failures) < 3:
            case.failures.append({
                "test": case.name, "run": r + 1, "score": round(score, 4), "prompt": prompts[i],
                "output": answer.output[:2000],
                "reasons": [f"{a['type']}: {o.reason}" for (o, _), a in zip(outcomes, test["assert"], strict=True)
                            if not o.passed]})
    return count
