#!/usr/bin/python3
"""tradeoffs_plot.py: the SVG of bench/tradeoffs.sh, drawn by hand (no
plotting library): two panels, NDCG@10 against ILD by category for the MMR
lambda sweep and NDCG@10 against the long-tail share for the beta sweep, one
polyline per model (the plain row is each curve's start), every point
labelled with its lambda or beta.

usage: tradeoffs_plot.py TRADEOFFS.jsonl OUT.svg
"""
import json
import math
import sys
from xml.sax.saxutils import escape

COLOURS = {"transformer": "#d62728", "ease": "#1f77b4", "itemknn": "#2ca02c"}
W, H = 520, 400  # one panel
ML, MR, MT, MB = 70, 20, 50, 50


def nice_ticks(lo, hi, n=5):
    span = hi - lo or abs(hi) or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10 * mag)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-12:
        out.append(round(t, 10))
        t += step
    return out


def panel(ox, rows, xkey, xlabel, ckey, title, target):
    s = []
    curves = {}
    for r in rows:
        if r["control"] in ("plain", ckey[0]):
            curves.setdefault(r["model"], []).append(r)
    pts = [(r[xkey], r["ndcg@10"]) for c in curves.values() for r in c if r[xkey] is not None]
    if not pts:
        return [f'<text x="{ox + W / 2}" y="{H / 2}" text-anchor="middle">{escape(title)}: no data</text>']
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    px, py = (x1 - x0) * 0.06 or 0.01, (y1 - y0) * 0.06 or 0.001
    x0, x1, y0, y1 = x0 - px, x1 + px, max(0.0, y0 - py), y1 + py
    X = lambda v: ox + ML + (v - x0) / (x1 - x0) * (W - ML - MR)
    Y = lambda v: MT + (1 - (v - y0) / (y1 - y0)) * (H - MT - MB)
    s.append(f'<rect x="{ox + ML}" y="{MT}" width="{W - ML - MR}" height="{H - MT - MB}" fill="none" stroke="#444"/>')
    s.append(f'<text x="{ox + W / 2}" y="22" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    for t in nice_ticks(x0, x1):
        s.append(f'<line x1="{X(t):.1f}" y1="{H - MB}" x2="{X(t):.1f}" y2="{H - MB + 5}" stroke="#444"/>')
        s.append(f'<line x1="{X(t):.1f}" y1="{MT}" x2="{X(t):.1f}" y2="{H - MB}" stroke="#eee"/>')
        s.append(f'<text x="{X(t):.1f}" y="{H - MB + 18}" text-anchor="middle">{t:g}</text>')
    for t in nice_ticks(y0, y1):
        s.append(f'<line x1="{ox + ML - 5}" y1="{Y(t):.1f}" x2="{ox + ML}" y2="{Y(t):.1f}" stroke="#444"/>')
        s.append(f'<line x1="{ox + ML}" y1="{Y(t):.1f}" x2="{ox + W - MR}" y2="{Y(t):.1f}" stroke="#eee"/>')
        s.append(f'<text x="{ox + ML - 8}" y="{Y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    s.append(f'<text x="{ox + ML + (W - ML - MR) / 2}" y="{H - 10}" text-anchor="middle">{escape(xlabel)}</text>')
    s.append(f'<text transform="translate({ox + 16},{MT + (H - MT - MB) / 2}) rotate(-90)" '
             f'text-anchor="middle">NDCG@10</text>')
    # the acceptance target against the transformer's plain row (dashed): x at
    # least target[0] x plain, NDCG@10 at least (1 - target[1]) x plain
    tp = next((r for r in rows if r["model"] == "transformer" and r["control"] == "plain"), None)
    if tp and tp[xkey] is not None:
        tx, ty = tp[xkey] * target[0], tp["ndcg@10"] * (1 - target[1])
        if x0 <= tx <= x1:
            s.append(f'<line x1="{X(tx):.1f}" y1="{MT}" x2="{X(tx):.1f}" y2="{H - MB}" stroke="#888" '
                     f'stroke-dasharray="4,3"/>')
            s.append(f'<text x="{X(tx) + 3:.1f}" y="{H - MB - 4}" font-size="10" fill="#888">'
                     f'{escape(target[2])}</text>')
        if y0 <= ty <= y1:
            s.append(f'<line x1="{ox + ML}" y1="{Y(ty):.1f}" x2="{ox + W - MR}" y2="{Y(ty):.1f}" stroke="#888" '
                     f'stroke-dasharray="4,3"/>')
            s.append(f'<text x="{ox + ML + 3}" y="{Y(ty) - 3:.1f}" font-size="10" fill="#888">'
                     f'transformer NDCG@10 -{100 * target[1]:g} %</text>')
    lx = ox + ML
    for model, c in curves.items():
        col = COLOURS.get(model, "#555")
        # plain first, then the control from the weakest setting to the strongest
        key = (lambda r: -1.0 if r["control"] == "plain" else (1 - r[ckey[1]] if ckey[1] == "lambda" else r[ckey[1]]))
        c = sorted((r for r in c if r[xkey] is not None), key=key)
        poly = " ".join(f"{X(r[xkey]):.1f},{Y(r['ndcg@10']):.1f}" for r in c)
        s.append(f'<polyline points="{poly}" fill="none" stroke="{col}" '
                 f'stroke-width="{2.6 if model == "transformer" else 1.5}"/>')
        for r in c:
            cx, cy = X(r[xkey]), Y(r["ndcg@10"])
            s.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{col}"/>')
            lab = "plain" if r["control"] == "plain" else f"{ckey[2]}{r[ckey[1]]:g}"
            s.append(f'<text x="{cx + 5:.1f}" y="{cy - 5:.1f}" font-size="10" fill="{col}">{escape(lab)}</text>')
        # the legend, in a row between the title and the plot
        s.append(f'<line x1="{lx}" y1="{MT - 14}" x2="{lx + 20}" y2="{MT - 14}" stroke="{col}" stroke-width="2"/>')
        s.append(f'<text x="{lx + 25}" y="{MT - 10}" fill="{col}">{escape(model)}</text>')
        lx += 40 + 8 * len(model)
    return s


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tradeoffs_plot.py TRADEOFFS.jsonl OUT.svg")
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    ds = rows[0]["dataset"] if rows else "?"
    body = panel(0, rows, "ild_category@10", "intra-list diversity by category @10", ("mmr", "lambda", "\u03bb="),
                 f"{ds}: MMR by category (\u03bb sweep)", (1.2, 0.05, "transformer ILD +20 %"))
    body += panel(W, rows, "long_tail@10", "long-tail share @10 (items outside the top 20 %)",
                  ("long_tail", "beta", "\u03b2="), f"{ds}: long-tail term (\u03b2 sweep)",
                  (2.0, 0.10, "transformer long-tail x2"))
    body += panel(2 * W, rows, "long_tail@10", "long-tail share @10 (items outside the top 20 %)",
                  ("long_tail_score", "beta", "\u03b2="), f"{ds}: long-tail term on the score (\u03b2 sweep)",
                  (2.0, 0.10, "transformer long-tail x2"))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">', f'<rect width="{3 * W}" height="{H}" fill="white"/>']
    svg += body + ["</svg>"]
    with open(sys.argv[2], "w") as fh:
        fh.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
