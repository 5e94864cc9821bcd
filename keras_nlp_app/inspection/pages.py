"""Self-contained HTML pages and PNG figures: token attributions people can look at.

Pages inline their styles and images (base64), so they open from the run folder in any
browser, with no server and nothing fetched. Figures use matplotlib's Agg backend (no screen).
"""

import base64
import html
import io

import numpy as np

POSITIVE = (22, 163, 74)  # green: the token raises the class's score
NEGATIVE = (220, 38, 38)  # red: it lowers it
ATTENDED = (37, 99, 235)  # blue: attention received (no sign)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.row { margin: .5em 0 1em; line-height: 2.2; }
.label { font-weight: 600; margin-right: .6em; }
.token { padding: .15em .3em; margin: 0 .08em; border-radius: .25em; white-space: pre; }
.predicted { border-left: 4px solid #111; padding-left: .5em; }
img { max-width: 100%; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc;
  padding: .25em .6em; text-align: right; } th { background: #f3f3f3; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
.muted { color: #666; font-size: .9em; }
"""


def page(title, body):
    """A complete HTML document around `body` (already escaped HTML)."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def png_tag(png, alt):
    """An <img> holding the PNG bytes inline."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def figure_png(figure):
    """The matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _shade(value, scale, signed):
    strength = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    red, green, blue = (POSITIVE if value >= 0 else NEGATIVE) if signed else ATTENDED
    return f"rgba({red}, {green}, {blue}, {0.08 + 0.72 * strength:.3f})"


def explanation_rows(explanation):
    """HTML for one explanation: per class a line of tokens shaded by attribution."""
    signed = explanation.method != "attention"
    names = explanation.classes if signed else ["attention"]
    parts = [f'<p class="muted">“{html.escape(explanation.text)}” — method: '
             f'{html.escape(explanation.method)}; predicted '
             f'<b>{html.escape(str(explanation.classes[explanation.predicted]))}</b></p>']
    for row, name in enumerate(names):
        values = explanation.attributions[row]
        scale = float(np.max(np.abs(values))) if len(values) else 0.0
        predicted = signed and row == explanation.predicted
        score = f" ({explanation.scores[row]:.3f})" if signed else ""
        tokens = "".join(
            f'<span class="token" data-attribution="{value:.6f}" title="{value:+.4f}" '
            f'style="background: {_shade(value, scale, signed)}">{html.escape(token)}</span>'
            for token, value in zip(explanation.tokens, values))
        parts.append(f'<div class="row{" predicted" if predicted else ""}" '
                     f'data-class="{html.escape(str(name))}"><span class="label">'
                     f'{html.escape(str(name))}{score}</span>{tokens}</div>')
    return "\n".join(parts)


def explanation_figure_png(explanation):
    """A heatmap: one row per class (or the attention row), one column per token; with
    attention, the last layer's token-by-token map beside it."""
    plt = pyplot()
    signed = explanation.method != "attention"
    values = np.asarray(explanation.attributions, dtype=np.float64)
    names = [str(c) for c in explanation.classes] if signed else ["attention"]
    columns = 2 if explanation.attention is not None else 1
    width = max(4.0, 0.45 * len(explanation.tokens) + 2)
    figure, axes = plt.subplots(1, columns, figsize=(width * columns, 1.2 + 0.45 * len(names)
                                                     + (0.3 * len(explanation.tokens) if columns == 2 else 0)),
                                squeeze=False)
    scale = float(np.max(np.abs(values))) or 1.0
    axis = axes[0][0]
    axis.imshow(values, cmap="RdYlGn" if signed else "Blues", aspect="auto",
                vmin=-scale if signed else 0, vmax=scale)
    axis.set_xticks(range(len(explanation.tokens)), explanation.tokens, rotation=60, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set_title(f"{explanation.method}: predicted {explanation.classes[explanation.predicted]}")
    if columns == 2:
        attention_axis = axes[0][1]
        attention_axis.imshow(explanation.attention, cmap="Blues")
        attention_axis.set_xticks(range(len(explanation.tokens)), explanation.tokens, rotation=60,
                                  ha="right")
        attention_axis.set_yticks(range(len(explanation.tokens)), explanation.tokens)
        attention_axis.set_title("last layer attention (heads averaged)")
    return figure_png(figure)


def explanations_page(explanations, title="Token attributions"):
    """One page with every explanation's shaded rows and heatmap."""
    body = []
    for explanation in explanations:
        body.append(explanation_rows(explanation))
        body.append(png_tag(explanation_figure_png(explanation), "attribution heatmap"))
    legend = ('<p class="muted">Green tokens raise a class\'s score, red ones lower it; the '
              'stronger the colour, the larger the share (scaled per row). Hover a token for its '
              'value. Attention rows are blue: the attention a token receives.</p>')
    return page(title, legend + "\n".join(body))
