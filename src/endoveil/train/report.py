"""A self-contained HTML report of an evaluation: inline SVG, no scripts, no CDN."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from endoveil.train.evaluate import EvalResult, VideoResult

__all__ = ["render_html", "roc_svg", "timeline_svg"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.bad{color:#b00;font-weight:600}.ok{color:#070}h2{margin-top:1.6em}svg{background:#fff}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4f}"  # NaN: metric undefined
    return html.escape(str(value))


def roc_svg(fpr: Sequence[float], tpr: Sequence[float], size: int = 320) -> str:
    """The ROC curve as an inline SVG (false-positive rate across, recall up)."""
    pad = 40
    inner = size - 2 * pad

    def xy(x: float, y: float) -> str:
        return f"{pad + x * inner:.1f},{pad + (1 - y) * inner:.1f}"

    points = " ".join(xy(x, y) for x, y in zip(fpr, tpr, strict=True))
    ticks = "".join(
        f'<text x="{pad + t * inner:.0f}" y="{size - pad + 16}" font-size="11" '
        f'text-anchor="middle">{t:g}</text>'
        f'<text x="{pad - 6}" y="{pad + (1 - t) * inner + 4:.0f}" font-size="11" '
        f'text-anchor="end">{t:g}</text>'
        for t in (0, 0.5, 1)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'role="img" aria-label="ROC curve">'
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad + inner}" x2="{pad + inner}" y2="{pad}" stroke="#ccc" '
        f'stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="2"/>{ticks}'
        f'<text x="{size / 2}" y="{size - 6}" font-size="12" text-anchor="middle">'
        f"false-positive rate (in-body frames lost)</text>"
        f'<text x="12" y="{size / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {size / 2})">OOB recall</text></svg>'
    )


def timeline_svg(video: VideoResult, threshold: float, width: int = 900) -> str:
    """One video's timeline: truth band, p_out curve with the threshold, predicted band."""
    pad, band, plot = 70, 14, 80
    height = band * 2 + plot + 40
    inner = width - pad - 10
    t = video.time_s
    # Each frame is drawn from its time to the next one's, so the axis ends one frame late.
    frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    t0, t1 = (t[0], t[-1] + frame_s) if t else (0.0, 1.0)
    span = (t1 - t0) or 1.0

    def x(v: float) -> float:
        return pad + (v - t0) / span * inner

    step = frame_s / span * inner

    def bar(flags: Sequence[bool], y: float, colour: str) -> str:
        return "".join(
            f'<rect x="{x(ti):.1f}" y="{y}" width="{step + 0.5:.1f}" height="{band}" '
            f'fill="{colour}"/>'
            for ti, on in zip(t, flags, strict=True)
            if on
        )

    curve_y0 = band + 8
    points = " ".join(
        f"{x(ti):.1f},{curve_y0 + (1 - p) * plot:.1f}" for ti, p in zip(t, video.p_out, strict=True)
    )
    thr_y = curve_y0 + (1 - threshold) * plot
    pred_y = curve_y0 + plot + 8
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="timeline of {html.escape(video.video)}">'
        f'<text x="0" y="{band - 2}" font-size="11">truth OOB</text>'
        f'<rect x="{pad}" y="0" width="{inner}" height="{band}" fill="#eef"/>'
        f"{bar(video.truth, 0, '#c62828')}"
        f'<text x="0" y="{curve_y0 + plot / 2}" font-size="11">p_out</text>'
        f'<rect x="{pad}" y="{curve_y0}" width="{inner}" height="{plot}" fill="none" '
        f'stroke="#ccc"/>'
        f'<line x1="{pad}" x2="{pad + inner}" y1="{thr_y:.1f}" y2="{thr_y:.1f}" stroke="#f90" '
        f'stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1.5"/>'
        f'<text x="0" y="{pred_y + band - 2}" font-size="11">anonymized</text>'
        f'<rect x="{pad}" y="{pred_y}" width="{inner}" height="{band}" fill="#eef"/>'
        f"{bar(video.predicted, pred_y, '#2e7d32')}"
        f'<text x="{pad}" y="{height - 4}" font-size="11">{t0:.2f} s</text>'
        f'<text x="{pad + inner}" y="{height - 4}" font-size="11" text-anchor="end">'
        f"{t1:.2f} s</text></svg>"
    )


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(result: EvalResult) -> str:
    """The whole report page."""
    s = result.summary
    f = s["frames"]
    model = s.get("model", {})
    threshold = float(s["threshold"])
    totals = s["video_totals"]
    leaked_class = "bad" if totals["leaked"] else "ok"
    metric_cols = [
        "frames",
        "oob",
        "in_body",
        "roc_auc",
        "pr_auc",
        "sensitivity",
        "specificity",
        "false_neg",
        "false_pos",
    ]
    sources = [{"source": name, **m} for name, m in s["sources"].items()]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>endoveil evaluation: {html.escape(str(model.get('name', '')))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Out-of-body model evaluation</h1>",
        f"<p>Model <b>{html.escape(str(model.get('name', '')))}</b> "
        f"{html.escape(str(model.get('version', '')))} "
        f"(input {model.get('input_size', '?')}², sha256 "
        f"{html.escape(str(model.get('sha256', ''))[:12])}…), operating threshold "
        f"<b>{threshold:.4g}</b>.</p>",
        "<h2>Frames</h2>",
        _table([{"set": "all", **f}], ["set", *metric_cols]),
        "<p>Sensitivity is OOB recall (out-of-body frames caught); specificity is the share of "
        "in-body frames kept, both at the operating threshold, before temporal "
        "post-processing.</p>",
        roc_svg(s["roc"]["fpr"], s["roc"]["tpr"]),
        "<h2>Per source</h2>",
        _table(sources, ["source", *metric_cols]),
        "<h2>Labelled videos, after temporal post-processing</h2>",
        f"<p class='{leaked_class}'>OOB frames leaked: {totals['leaked']} of "
        f"{totals['oob_frames']}; in-body frames lost: {totals['lost']} of "
        f"{totals['frames'] - totals['oob_frames']}. Out-of-body excursions fully hidden: "
        f"{totals['excursions_hidden']} of {totals['excursions']}.</p>",
        _table(
            s["videos"],
            [
                "video",
                "source",
                "frames",
                "oob_frames",
                "leaked",
                "lost",
                "excursions",
                "excursions_hidden",
            ],
        ),
    ]
    for video in result.videos:
        parts += [f"<h3>{html.escape(video.video)}</h3>", timeline_svg(video, threshold)]
    wrong = s["misclassified"][:50]
    parts += [
        "<h2>Misclassified frames (worst first, at most 50)</h2>",
        _table(wrong, ["key", "truth_oob", "p_out"]) if wrong else "<p>None.</p>",
        "</body></html>\n",
    ]
    return "".join(parts)
