"""The policies of mlspec.yaml: pure checks, reported like any other diagnostic.

    policies:
      owners:                          # CODEOWNERS-style: the last rule matching an address wins
        - match: ["*"]
          teams: [team-platform]       # allowed metadata.owner values           (validate)
        - match: ["Model/*", "Dataset/*"]
          teams: [team-nlp, team-growth]
          people: ["*@example.com"]    # who may change them: commit authors      (plan --base, apply)
      required_labels:
        - match: ["Service/*"]
          labels: [tier]                                                         # (validate)
      gated_serving: true              # a Service serves only a Model whose gates passed (plan, apply)
      protect:
        - labels: {tier: gold}         # no delete without --allow-destroy          (plan)

Each check here is a function of resources and rules; where the facts come from (summaries, git,
state) is the caller's business.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, Locate, located


def rules(config: Any) -> dict[str, Any]:
    """The `policies` setting as plain data (the project config may be a model or, cached, a dict)."""
    value = config.model_dump() if hasattr(config, "model_dump") else config
    return dict(value or {})


def digest(policies: Mapping[str, Any]) -> str:
    """What a cached verdict must be keyed by: the same files under other rules get another verdict."""
    return hashlib.sha256(json.dumps(policies, sort_keys=True).encode()).hexdigest()[:16]


def matches(address: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(address, p) for p in patterns)


def owner_rule(policies: Mapping[str, Any], address: str) -> Mapping[str, Any] | None:
    found = None
    for rule in policies.get("owners") or ():
        if matches(address, rule["match"]):
            found = rule
    return found


def check_resource(
    policies: Mapping[str, Any], file: str, doc: int, address: str, owner: str | None,
    labels: Mapping[str, str], locate: Locate,
) -> list[Diagnostic]:
    """Owner team and required labels of one resource (validate time)."""
    out = []
    rule = owner_rule(policies, address)
    teams = rule.get("teams") if rule else None
    if teams and owner not in teams:
        where: tuple[str | int, ...] = ("metadata", "owner") if owner is not None else ("metadata",)
        said = f"`{owner}`" if owner is not None else "no owner"
        out.append(located(locate, file, doc, where, codes.POLICY_OWNER_TEAM,
                           f"{address} has {said}; the owners policy for `{', '.join(rule['match'])}` allows "  # type: ignore[index]
                           f"{', '.join(teams)}", key=owner is None,
                           expected=f"metadata.owner: one of {', '.join(teams)}",
                           hint="change metadata.owner, or the owners rules in mlspec.yaml"))
    for label_rule in policies.get("required_labels") or ():
        if not matches(address, label_rule["match"]):
            continue
        missing = [key for key in label_rule["labels"] if key not in labels]
        if missing:
            where = ("metadata", "labels") if labels else ("metadata",)
            out.append(located(locate, file, doc, where, codes.POLICY_REQUIRED_LABEL,
                               f"{address} lacks the label{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                               f"required of `{', '.join(label_rule['match'])}`", key=True,
                               expected=f"metadata.labels with {', '.join(label_rule['labels'])}",
                               hint=f"add labels: {{{', '.join(f'{k}: ...' for k in missing)}}}"))
    return out


def author_may_change(policies: Mapping[str, Any], address: str, people: Iterable[str]) -> bool:
    """Is any of `people` (a commit author `Name <email>`, a CI actor) allowed to change `address`?"""
    rule = owner_rule(policies, address)
    allowed = rule.get("people") if rule else None
    if not allowed:
        return True
    names = set()
    for person in people:
        names.add(person)
        if "<" in person and person.endswith(">"):
            names.add(person[person.rindex("<") + 1 : -1])
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in allowed)


def protected(policies: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return any(all(labels.get(k) == v for k, v in rule["labels"].items()) for rule in policies.get("protect") or ())


def plan_diagnostics(
    policies: Mapping[str, Any],
    deletes: Iterable[tuple[str, Mapping[str, str], Iterable[str]]],
    serving: Iterable[tuple[str, str, Any]],
    *,
    allow_destroy: bool,
) -> list[Diagnostic]:
    """Checks on what a plan would do. `deletes`: (address, its labels, the protected resources that
    stay and were built from it, directly or through others); `serving`: (server, gated upstream,
    whether it may be served: True, False when it has no champion, "ungated" when its champion was
    judged by no gate at all and the server does not say `allow_ungated`) for every serving resource
    the plan creates or changes, and every gated resource anywhere upstream of it."""
    from mlspec.spec.vocabulary import PROJECT_FILE

    out = []
    if not allow_destroy:
        for address, labels, guards in deletes:
            guarding = list(guards)
            if protected(policies, labels):
                out.append(Diagnostic(
                    codes.POLICY_PROTECTED, f"the plan deletes {address}, which the protect policy guards "
                    f"(labels {', '.join(f'{k}={v}' for k, v in sorted(labels.items()))})", PROJECT_FILE,
                    field="policies.protect", hint="pass --allow-destroy if this delete is intended"))
            elif guarding:
                out.append(Diagnostic(
                    codes.POLICY_PROTECTED, f"the plan deletes {address}, which {', '.join(guarding)} (guarded by "
                    "the protect policy) was built from", PROJECT_FILE, field="policies.protect",
                    hint="pass --allow-destroy if this delete is intended"))
    if policies.get("gated_serving"):
        for service, model, passed in serving:
            if passed == "ungated":
                out.append(Diagnostic(
                    codes.POLICY_GATED_SERVING, f"{service} would serve {model}, whose champion passed no gate: "
                    "it has no evaluation gates", PROJECT_FILE, field="policies.gated_serving",
                    hint=f"give {model} evaluation gates, or set `allow_ungated: true` on {service}"))
            elif passed is False:
                out.append(Diagnostic(
                    codes.POLICY_GATED_SERVING, f"{service} would serve {model}, which has no champion: no version "
                    "passed its evaluation gates", PROJECT_FILE, field="policies.gated_serving",
                    hint=f"improve {model} until its gates pass, or promote a version by hand "
                    f"(`mlspec promote {model} VERSION`)"))
    return out


def author_diagnostics(
    policies: Mapping[str, Any], changed: Iterable[tuple[str, str]], people: Iterable[str]
) -> list[Diagnostic]:
    """`changed`: (address, file) a branch adds, edits or removes; `people`: its author and CI actor."""
    who = list(dict.fromkeys(p for p in people if p))
    if not who or not policies.get("owners"):
        return []  # the author is unknown: nothing to check against
    out = []
    for address, file in changed:
        if not author_may_change(policies, address, who):
            rule = owner_rule(policies, address) or {}
            out.append(Diagnostic(
                codes.POLICY_AUTHOR, f"{' / '.join(who)} may not change {address}: the owners policy for "
                f"`{', '.join(rule.get('match', ()))}` allows {', '.join(rule.get('people') or ())}", file,
                field="metadata", hint="ask one of them to make or approve the change"))
    return out
