"""A drift report: the reference profile and the current window in, verdicts out (pure), then written
as JSON, as an HTML page with a chart per drifted feature, and as Prometheus gauges (a textfile for
node_exporter's collector).

Per feature, the methods of the spec's `drift` that name it (or every feature), else Evidently's
choice; a text feature is judged on its lengths, and on its out-of-vocabulary rate against the Model's
tokenizer (a two-proportion z-test that only counts a rise). Dataset drift when the share of drifted
features reaches `drift_share`. Below `min_samples` rows in the window the verdict is "not enough
data", never drift.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlspec.sdk.monitoring import DEFAULT_THRESHOLDS
from mlspec_monitor.profile import Sample
from mlspec_monitor.stats import P_VALUE, Verdict, default_method, judge, z_test
from mlspec_monitor.window import Window

DRIFT, STEADY, THIN = "drift", "no drift", "not enough data"
PSI_WARN = 0.1


def judged(address: str, spec: Any, profile: Mapping[str, Any], window: Window) -> dict[str, Any]:
    features: dict[str, Any] = {}
    problems: list[str] = []
    enough = window.rows >= spec.window.min_samples
    for name in spec.features:
        stored = (profile.get("features") or {}).get(name)
        if stored is None:
            problems.append(f"`{name}` is not in the reference profile (re-apply the Monitor after the Dataset)")
            continue
        reference, current = Sample.from_json(stored), window.samples.get(name)
        if reference.rows == 0:
            features[name] = {"kind": reference.kind, "drifted": False, "verdicts": [],
                              "note": "no values in the reference", "current_rows": current.rows if current else 0}
            continue
        if current is None or current.rows == 0:
            features[name] = {"kind": reference.kind, "drifted": False, "verdicts": [],
                              "note": "no values in the window" if enough else None, "current_rows": 0}
            continue
        features[name] = _feature(name, reference, current, spec) if enough else {
            "kind": reference.kind, "drifted": False, "verdicts": [], "current_rows": current.rows}
    predictions = None
    labels = profile.get("labels") or {}
    if spec.predictions and enough and labels and window.predictions:
        method = default_method("categorical", sum(labels.values()), len(set(labels) | set(window.predictions)))
        served = judge(method, DEFAULT_THRESHOLDS[method], dict(labels), dict(window.predictions), numeric=False)
        predictions = {"verdict": served.to_json(), "reference": _shares(labels),
                       "current": _shares(window.predictions)}
    judged_features = [f for f in features.values() if f.get("verdicts")]
    drifted = [n for n, f in features.items() if f["drifted"]]
    share = len(drifted) / len(judged_features) if judged_features else 0.0
    verdict = THIN if not enough else (DRIFT if judged_features and share >= spec.drift_share else STEADY)
    because = "; ".join(features[n]["because"] for n in drifted)
    summary = {THIN: f"{window.rows} row(s) in the window, fewer than min_samples {spec.window.min_samples}",
               DRIFT: f"{len(drifted)} of {len(judged_features)} feature(s) drifted ({because})",
               STEADY: f"no drift in {len(judged_features)} feature(s)" + (
                   f" ({len(drifted)} drifted, below the share {spec.drift_share:g})" if drifted else "")}[verdict]
    if predictions and predictions["verdict"]["drifted"]:
        summary += f"; predictions drifted ({predictions['verdict']['method']} {predictions['verdict']['value']:.3g})"
    return {"format_version": "1", "monitor": address, "at": time.time(), "verdict": verdict, "summary": summary,
            "rows": window.rows, "read": window.read, "skipped": window.skipped, "sources": window.sources,
            "versions": dict(window.versions), "drift_share": spec.drift_share, "share": round(share, 4),
            "features": features, "predictions": predictions, "problems": problems}


def _feature(name: str, reference: Sample, current: Sample, spec: Any) -> dict[str, Any]:
    numeric = reference.kind in ("numeric", "text")
    ref_data: Any = reference.values if numeric else dict(reference.counts)
    cur_data: Any = current.values if numeric else dict(current.counts)
    distinct = len(np.unique(np.concatenate([reference.values, current.values]))) if numeric else \
        len(set(reference.counts) | set(current.counts))
    chosen = [d for d in spec.drift if d.features is None or name in d.features]
    methods = [(d.method, d.limit()) for d in chosen] or [
        (m := default_method("numeric" if numeric else "categorical", reference.rows, distinct), DEFAULT_THRESHOLDS[m])]
    verdicts: list[Verdict] = [judge(method, limit, ref_data, cur_data, numeric) for method, limit in methods]
    warnings = [f"psi {v.value:.3f} >= {PSI_WARN}" for v in verdicts if v.method == "psi" and not v.drifted
                and v.value >= PSI_WARN]
    on = f"{name} length" if reference.kind == "text" else name
    reasons = [f"{v.method} {v.value:.3g} on {on} {'<' if v.method in P_VALUE else '>'} {v.threshold:g}"
               for v in verdicts if v.drifted]
    out: dict[str, Any] = {"kind": reference.kind, "verdicts": [v.to_json() for v in verdicts],
                           "reference_rows": reference.rows, "current_rows": current.rows,
                           "reference": _summary(reference), "current": _summary(current)}
    if reference.kind == "text" and reference.words and current.words:
        before, after = reference.unknown / reference.words, current.unknown / current.words
        p = z_test({"known": reference.words - reference.unknown, "unknown": reference.unknown},
                   {"known": current.words - current.unknown, "unknown": current.unknown}, numeric=False)
        rose = after > before and p < 0.05
        out["oov"] = {"reference": round(before, 6), "current": round(after, 6), "p_value": round(p, 6),
                      "drifted": rose}
        if rose:
            shown = "< 0.001" if p < 0.001 else f"{p:.2g}"
            reasons.append(f"out-of-vocabulary rate {after:.3f} > {before:.3f} (z-test p {shown})")
    out |= {"drifted": bool(reasons), "because": "; ".join(reasons), "warnings": warnings,
            "chart": _chart_data(reference, current)}
    return out


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {str(k): round(v / total, 6) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:20]}


def _summary(sample: Sample) -> dict[str, Any]:
    if sample.kind == "categorical":
        return {"top": _shares(sample.counts)}
    values = sample.values
    if not len(values):
        return {}
    quantiles = np.quantile(values, [0.05, 0.5, 0.95])
    return {"mean": round(float(values.mean()), 6), "std": round(float(values.std()), 6),
            "p5": float(quantiles[0]), "p50": float(quantiles[1]), "p95": float(quantiles[2])}


def _chart_data(reference: Sample, current: Sample) -> dict[str, Any]:
    if reference.kind == "categorical":
        keys = [k for k, _ in (reference.counts + current.counts).most_common(20)]
        return {"labels": keys, "reference": [_share(reference.counts, k) for k in keys],
                "current": [_share(current.counts, k) for k in keys]}
    both = np.concatenate([reference.values, current.values])
    edges = np.histogram_bin_edges(both, bins=20) if len(both) else np.array([0.0, 1.0])
    ref = np.histogram(reference.values, edges)[0] / max(1, len(reference.values))
    cur = np.histogram(current.values, edges)[0] / max(1, len(current.values))
    return {"labels": [f"{edges[i]:.3g}" for i in range(len(edges) - 1)], "reference": ref.round(6).tolist(),
            "current": cur.round(6).tolist()}


def _share(counts: Mapping[str, int], key: str) -> float:
    total = sum(counts.values()) or 1
    return round(counts.get(key, 0) / total, 6)


# -- writing ---------------------------------------------------------------------------------------


def write(report: Mapping[str, Any], directory: Path) -> dict[str, str]:
    """report.json, report.html and drift.prom in `directory` (each written whole, by rename), and a
    copy of the JSON under the run's time, so a history is kept."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(float(report["at"])))
    files = {"json": directory / "report.json", "html": directory / "report.html",
             "prometheus": directory / "drift.prom", "history": directory / "history" / f"report-{stamp}.json"}
    body = json.dumps(report, indent=2, default=str)
    _whole(files["json"], body)
    files["history"].parent.mkdir(exist_ok=True)
    _whole(files["history"], body)
    _whole(files["html"], page(report))
    _whole(files["prometheus"], gauges(report))
    return {k: str(v) for k, v in files.items()}


def _whole(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def gauges(report: Mapping[str, Any]) -> str:
    """The Prometheus text format: what `mlspec render prometheus`'s rules alert on."""
    monitor = _label(str(report["monitor"]))
    lines = ["# HELP mlspec_drift_detected 1 when the Monitor's last run found dataset drift.",
             "# TYPE mlspec_drift_detected gauge",
             f'mlspec_drift_detected{{monitor="{monitor}"}} {1 if report["verdict"] == DRIFT else 0}',
             "# HELP mlspec_drift_share Share of the monitored features that drifted in the last run.",
             "# TYPE mlspec_drift_share gauge",
             f'mlspec_drift_share{{monitor="{monitor}"}} {report["share"]}',
             "# HELP mlspec_drift_window_rows Rows of the last run's current window.",
             "# TYPE mlspec_drift_window_rows gauge",
             f'mlspec_drift_window_rows{{monitor="{monitor}"}} {report["rows"]}',
             "# HELP mlspec_feature_drift_value Each method's value per feature (a p-value or a distance).",
             "# TYPE mlspec_feature_drift_value gauge"]
    for name, feature in (report.get("features") or {}).items():
        for verdict in feature.get("verdicts") or ():
            lines.append(f'mlspec_feature_drift_value{{monitor="{monitor}",feature="{_label(name)}",'
                         f'method="{verdict["method"]}"}} {_number(verdict["value"])}')
    lines += ["# HELP mlspec_monitor_last_run_timestamp_seconds When the Monitor last ran.",
              "# TYPE mlspec_monitor_last_run_timestamp_seconds gauge",
              f'mlspec_monitor_last_run_timestamp_seconds{{monitor="{monitor}"}} {float(report["at"]):.3f}']
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return "NaN" if isinstance(value, float) and math.isnan(value) else repr(float(value))


def page(report: Mapping[str, Any]) -> str:
    """A page a person opens: the verdict, a row per feature, and a chart (reference against current)
    for each one that drifted. Self-contained: inline SVG, no scripts, nothing fetched."""
    e = html.escape
    rows = []
    charts = []
    for name, feature in (report.get("features") or {}).items():
        methods = ", ".join(f"{v['method']} {v['value']:.3g}" for v in feature.get("verdicts") or ()) or "-"
        state = "drift" if feature.get("drifted") else "ok"
        rows.append(f"<tr class='{state}'><td>{e(name)}</td><td>{e(feature.get('kind', ''))}</td><td>{e(methods)}</td>"
                    f"<td>{e(feature.get('because') or state)}</td></tr>")
        if feature.get("drifted") and feature.get("chart"):
            charts.append(f"<h3>{e(name)}</h3>{_svg(feature['chart'])}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(str(report['monitor']))}: {e(str(report['verdict']))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}td,th{{padding:.3rem .6rem;text-align:left}}
tr.drift{{background:#ffebe9}}.legend span{{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem}}</style>
</head><body>
<h1>{e(str(report['monitor']))}</h1>
<p><strong>{e(str(report['verdict']))}</strong>: {e(str(report['summary']))}</p>
<p>{report['rows']:,} row(s) in the window; {e(json.dumps(report.get('skipped') or {}))} skipped;
at {e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(float(report['at']))))}</p>
<table><tr><th>feature</th><th>type</th><th>methods</th><th>verdict</th></tr>{''.join(rows)}</table>
<p class="legend"><span style="background:#8c959f"></span>reference <span style="background:#cf222e"></span>current</p>
{''.join(charts)}
</body></html>
"""


def _svg(chart: Mapping[str, Any]) -> str:
    labels, ref, cur = chart["labels"], chart["reference"], chart["current"]
    top = max([*ref, *cur, 1e-9])
    width, height, bar = 640, 160, 640 / max(1, len(labels)) / 2.2
    bars = []
    for i, (a, b) in enumerate(zip(ref, cur, strict=True)):
        x = i * width / max(1, len(labels))
        for offset, share, colour in ((0.0, a, "#8c959f"), (bar, b, "#cf222e")):
            h = share / top * (height - 20)
            bars.append(f"<rect x='{x + offset:.1f}' y='{height - h:.1f}' width='{bar:.1f}' height='{h:.1f}' "
                        f"fill='{colour}'><title>{html.escape(str(labels[i]))}: {share:.3f}</title></rect>")
    return f"<svg width='{width}' height='{height}' role='img'>{''.join(bars)}</svg>"
