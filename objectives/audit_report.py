"""The audit's report: markdown, JSON and an HTML page with two plots (PNG embedded)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from objectives.audit_findings import AuditResult

REPORT_FILES = ("audit.md", "audit.json", "audit.html")


def markdown(result: AuditResult, title: str = "Data audit") -> str:
    """Findings (blocking first) with examples, then coverage."""
    lines = [f"# {title}", ""]
    lines += [f"- {name}: `{path}`" for name, path in result.sources.items() if path]
    s = result.settings
    lines += ["", f"As of {s['as_of'] or 'n/a'}; stale stock: no sale in {s['stale_days']} days; "
              f"stale customers: last order over {s['horizon_days']:g} days ago; near-duplicate "
              f"titles: Jaccard >= {s['near_duplicate_threshold']} on 4-character shingles "
              f"within a category; margin outliers: |robust z| > {s['margin_z']:g}; high return "
              f"rates: robust z > {s['return_rate_z']:g} within the category.", "",
              f"**{len(result.blocking)} blocking, "
              f"{len(result.findings) - len(result.blocking)} warning findings.**", "",
              "| severity | code | count | detail |", "| --- | --- | ---: | --- |"]
    ordered = sorted(result.findings, key=lambda f: (f.severity != "blocking", f.code))
    lines += [f"| {f.severity} | `{f.code}` | {f.count:,} | {f.detail} |" for f in ordered]
    for f in ordered:
        lines += ["", f"## `{f.code}` ({f.severity}, {f.count:,})", "",
                  f"{f.to_dict()['description']}."]
        lines += [f"- {_example(e)}" for e in f.examples]
    lines += ["", "## Coverage", "", "| field | missing |", "| --- | ---: |"]
    lines += [f"| {c} | {v:.1%} |" for c, v in result.coverage["missing_share"].items()]
    per_cat = result.coverage.get("judged_queries_per_category")
    if per_cat:
        lines += ["", "| top-level category | judged queries |", "| --- | ---: |"]
        lines += [f"| {c} | {n:,} |" for c, n in per_cat.items()]
    return "\n".join(lines) + "\n"


def _example(example: dict[str, object]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in example.items())


def plots(result: AuditResult) -> dict[str, bytes]:
    """PNG bytes: finding counts, and the share of products missing each field."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    ordered = sorted(result.findings, key=lambda f: f.count)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ordered) + 1.2))
    ax.barh([f.code for f in ordered], [f.count for f in ordered],
            color=["#c0392b" if f.severity == "blocking" else "#e67e22" for f in ordered])
    ax.set_xscale("log")
    ax.set_xlabel("count (log scale); red = blocking")
    ax.set_title("Findings")
    out["findings.png"] = _png(fig, plt)
    shares = result.coverage["missing_share"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(list(shares), [100 * v for v in shares.values()], color="#2c7fb8")
    ax.set_ylabel("% of products missing")
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=45)
    ax.set_title("Coverage of business fields")
    out["coverage.png"] = _png(fig, plt)
    return out


def _png(fig: object, plt: object) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(buffer, format="png", dpi=90)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buffer.getvalue()


def html_page(text: str, images: dict[str, bytes]) -> str:
    """The markdown as preformatted text with the plots embedded as data URIs."""
    figures = "".join(f'<img alt="{n}" src="data:image/png;base64,'
                      f'{base64.b64encode(png).decode()}">' for n, png in images.items())
    return ("<!doctype html><html><head><meta charset='utf-8'><title>marginrank audit</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "pre{white-space:pre-wrap}img{max-width:100%}</style></head><body>"
            f"{figures}<pre>{html.escape(text)}</pre></body></html>\n")


def write_reports(result: AuditResult, out: Path, title: str = "Data audit") -> list[Path]:
    """Write audit.md, audit.json and audit.html into the folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(result, title)
    paths = [out / name for name in REPORT_FILES]
    paths[0].write_text(text, encoding="utf-8")
    paths[1].write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    paths[2].write_text(html_page(text, plots(result)), encoding="utf-8")
    return paths
