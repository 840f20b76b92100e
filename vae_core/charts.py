"""Altair chart builders: arrays in, a chart out. They never call streamlit."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import altair as alt

__all__ = [
    "latent_scatter",
    "path_layer",
    "loss_chart",
    "timeline_chart",
    "timeline_domain",
    "scatter_frame",
    "ellipse_layer",
    "prior_layer",
    "image_layer",
    "step_chart",
    "on_canvas",
    "stable_spec",
    "scatter_spec",
    "switch_scatter_spec",
    "SWITCH_PARAM",
]

# The hover picture is two images side by side: the tooltip says which is which.
TOOLTIP_PICTURE = "the test digit | its reconstruction from μ"
POINT_SIZE = 18  # marker area in px^2: small enough for a few thousand points
PALETTE = "tableau10"  # ten distinguishable class colours
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"  # altair.SCHEMA_URL (a test checks)


def _altair():
    """Altair, imported on first use rather than with this module: the latent page's first scatter is a
    hand-written spec, so a server's first visit does not wait for Altair's import (0.2 to 0.3 s of a
    cold start; ui/preload.py)."""
    import altair

    return altair


# Vega draws SVG by default below 2,000 data points in Streamlit: one DOM node per point, noticeably
# slower to redraw on every rerun than one canvas (switching projections: 0.59 s -> 0.52 s at 2,000).
CANVAS = {"embedOptions": {"renderer": "canvas"}}


def on_canvas(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The same chart, drawn on a canvas: set on the final (layered) chart, as usermeta is top-level only."""
    return chart.properties(usermeta=CANVAS)


def stable_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart as a Vega-Lite spec whose datasets are named by position ("data-0", ...), with the
    data frames themselves in spec["datasets"] (for `st.vega_lite_chart`).

    Streamlit's front end redraws a chart in place, on the same canvas, when only its data changed,
    and builds a new Vega view when the spec text changed. `st.altair_chart` names each dataset by a
    hash of its content, so new data also means a new spec: switching projections rebuilt the view.
    Names by position keep the spec text equal as long as the encodings are, which is why the
    scatter's axis titles are not in the chart (README, "How fast", has the measured switch times).
    """
    alt = _altair()
    datasets: dict[str, pd.DataFrame] = {}

    def named(part):
        part = part.copy(deep=False)
        if isinstance(part.data, pd.DataFrame):
            name = f"data-{len(datasets)}"
            datasets[name] = part.data
            part.data = alt.NamedData(name)
        if isinstance(getattr(part, "layer", None), list):
            part.layer = [named(p) for p in part.layer]
        return part

    spec = named(chart).to_dict()
    view = spec.get("config", {}).get("view", {})
    for key in ("continuousWidth", "continuousHeight"):  # Altair's default theme; Streamlit sizes charts
        view.pop(key, None)
    if spec.get("config") == {"view": {}}:
        del spec["config"]
    spec["datasets"] = datasets
    return spec


def scatter_frame(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    indices: np.ndarray | None = None,
    images: list[str] | None = None,
) -> pd.DataFrame:
    """One row per point: x, y, class name, test index and (optionally) an image URL: a data URL, or a
    link to the app's route for a bundled model's shipped images (ui/thumbs.py)."""
    frame = pd.DataFrame(
        {
            "x": coords[:, 0].astype(float),
            "y": coords[:, 1].astype(float),
            "class": [class_names[int(c)] for c in labels],
            "index": indices if indices is not None else np.arange(len(coords)),
        }
    )
    if images is not None:
        frame["image"] = images
    return frame


def latent_scatter(
    frame: pd.DataFrame,
    class_names: list[str],
    height: int = 520,
    domain: tuple[float, float] | None = None,
) -> alt.Chart:
    """Points coloured by class, a legend of class names, and the digit itself in the tooltip.

    With a "sigma" column, more uncertain points are drawn fainter (mean sigma over the dimensions).
    The axes carry no titles: they differ between projections, and a chart whose spec stays the same
    is redrawn in place (see stable_spec); the page says what the axes are.
    """
    alt = _altair()
    pictures = "image" in frame
    tooltip = ["class:N", "index:Q"] + (["sigma:Q"] if "sigma" in frame else [])
    tooltip += ["picture:N", "image:N"] if pictures else []
    opacity = (
        alt.Opacity("sigma:Q", scale=alt.Scale(range=[0.95, 0.15]), legend=alt.Legend(title="mean σ"))
        if "sigma" in frame
        else alt.value(0.75)
    )
    chart = alt.Chart(frame, height=height)
    if pictures:  # one expression, not a column: 2,000 copies of the same words would travel with the data
        chart = chart.transform_calculate(picture=json.dumps(TOOLTIP_PICTURE))
    return (
        chart.mark_circle(size=POINT_SIZE)
        .encode(
            x=alt.X("x:Q", title=None, scale=_scale(domain)),
            y=alt.Y("y:Q", title=None, scale=_scale(domain)),
            color=alt.Color(
                "class:N", sort=class_names, scale=alt.Scale(scheme=PALETTE), legend=alt.Legend(title="class")
            ),
            opacity=opacity,
            tooltip=tooltip,
        )
        .interactive(name="zoom")  # a fixed name: Altair would otherwise number it anew each run
    )


def scatter_spec(
    frame: pd.DataFrame, class_names: list[str], height: int = 520, domain: tuple[float, float] | None = None
) -> dict:
    """stable_spec(on_canvas(latent_scatter(...))) for this frame, without building the Altair chart
    each time: Altair spends about 40 ms turning the encodings into schema objects, on every rerun of
    a page whose spec text never changes between projections. The spec is made once per column set."""
    spec = json.loads(_scatter_template(tuple(frame.columns), tuple(class_names), height, domain))
    spec["datasets"] = {"data-0": frame}
    return spec


@functools.lru_cache(maxsize=64)
def _scatter_template(columns: tuple[str, ...], class_names: tuple[str, ...], height: int, domain) -> str:
    empty = pd.DataFrame({c: [] for c in columns})
    spec = stable_spec(on_canvas(latent_scatter(empty, list(class_names), height, domain)))
    del spec["datasets"]
    return json.dumps(spec)


SWITCH_PARAM = "proj"  # the chart's projection choice: a point selection on the field "projection"
SWITCH_SIGNAL = SWITCH_PARAM + "_projection"  # Vega-Lite's signal for a bound selection field


def switch_scatter_spec(
    frame: pd.DataFrame,
    class_names: list[str],
    methods: dict[str, tuple[str, str, str]],
    initial: str,
    revision: int = 0,
    height: int = 520,
) -> dict:
    """One scatter holding several projections of the same points, with radio buttons under it that
    switch between them in the browser, without a round trip to the server.

    frame: class, index, image, and x_<method>, y_<method> for each method that has coordinates.
    methods: every choice offered, in order, as method -> (label, x title, y title). A method without
    columns in frame is a choice whose coordinates are not computed yet: it shows a line saying so.
    The choice is a point selection (SWITCH_PARAM), so `st.vega_lite_chart(on_select=...)` tells
    the server too. initial: the choice drawn when the view is built; revision: bump it to make the
    browser build the view anew (the spec text changes), e.g. when the choice was made elsewhere.
    The spec text depends only on the columns and choices, so new data is drawn in place.
    """
    spec = json.loads(_switch_template(tuple(frame.columns), tuple(class_names), tuple(methods.items()), height))
    next(p for p in spec["params"] if p["name"] == SWITCH_PARAM)["value"] = [{"projection": initial}]
    spec["usermeta"]["revision"] = revision
    spec["datasets"] = {"data-0": frame}
    return spec


# Said in the empty plot (the page's own spinner is above the chart, often scrolled out of sight).
WAITING_TEXT = "Computing {label} for these points now: several seconds (the first UMAP after a restart, longer)…"


@functools.lru_cache(maxsize=64)
def _switch_template(columns: tuple[str, ...], class_names: tuple[str, ...], methods: tuple, height: int) -> str:
    """Written as JSON, not built with Altair: Altair takes 0.1 s for it, on the first visit's page
    (tests/test_charts.py checks the spec against the Vega-Lite schema).

    One layer of points whose x and y are the chosen projection's columns: a choice recomputes two
    fields and redraws one mark, and the scales follow. The choice is read from the radio buttons'
    signal; the selection's store only tells the server (switch_view keeps the two equal when the
    browser rebuilds the chart)."""
    names = [method for method, _ in methods]
    color = {
        "field": "class", "type": "nominal", "sort": list(class_names), "scale": {"scheme": PALETTE},
        "legend": {"title": "class"},
    }  # fmt: skip
    tooltip = [{"field": "class", "type": "nominal"}, {"field": "index", "type": "quantitative"}]
    pictures = "image" in columns
    tooltip += [{"field": "picture", "type": "nominal"}, {"field": "image", "type": "nominal"}] if pictures else []
    present = [method for method in names if f"x_{method}" in columns]

    def chosen(axis: str) -> str:  # the chosen projection's column; null (not drawn) while not computed
        expr = "null"
        for method in reversed(present):
            expr = f"{SWITCH_SIGNAL} === {json.dumps(method)} ? datum[{json.dumps(f'{axis}_{method}')}] : {expr}"
        return expr

    axis = {"type": "quantitative", "title": None, "scale": {"zero": False}}
    layers = [{
        "name": "points",  # the view the selections listen on
        "transform": [{"calculate": chosen("x"), "as": "x"}, {"calculate": chosen("y"), "as": "y"}]
        + ([{"calculate": json.dumps(TOOLTIP_PICTURE), "as": "picture"}] if pictures else []),
        "mark": {"type": "circle", "size": POINT_SIZE, "opacity": 0.75},
        "encoding": {"x": {"field": "x", **axis}, "y": {"field": "y", **axis}, "color": color, "tooltip": tooltip},
    }]  # fmt: skip
    missing = [method for method in names if f"x_{method}" not in columns]
    if missing:  # a line in the middle of the empty plot while the server computes the choice
        layers.append({
            "data": {"values": [
                {"projection": method, "message": WAITING_TEXT.format(label=label)}
                for method, (label, _, _) in methods if method in missing
            ]},
            "transform": [{"filter": f"datum.projection === {SWITCH_SIGNAL}"}],
            "mark": {"type": "text", "fontSize": 14, "color": "gray"},
            "encoding": {
                "x": {"value": {"expr": "width / 2"}}, "y": {"value": {"expr": "height / 2"}},
                "text": {"field": "message", "type": "nominal"},
            },
        })  # fmt: skip
    title = "''"  # the axes of the chosen projection, switched with it
    for method, (_, x_title, y_title) in reversed(methods):
        axes = json.dumps(f"→ {x_title} · ↑ {y_title}", ensure_ascii=False)
        title = f"{SWITCH_SIGNAL} == {json.dumps(method)} ? {axes} : {title}"
    choice = {
        "name": SWITCH_PARAM,
        # only the buttons choose: a click on the plot must not pick (or clear) a projection
        "select": {"type": "point", "fields": ["projection"], "on": "click[false]", "clear": False, "toggle": False},
        "bind": {"input": "radio", "options": names, "labels": [label for _, (label, _, _) in methods],
                 "name": "Projection "},
        "value": [{"projection": names[0]}],
        "views": ["points"],
    }  # fmt: skip
    zoom = {
        "name": "zoom",
        # a zoom belongs to one projection's axes: the buttons' change event resets it, as a double click does
        "select": {"type": "interval", "encodings": ["x", "y"], "clear": "dblclick, window:change"},
        "bind": "scales",
        "views": ["points"],
    }
    spec = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": {"name": "data-0"},
        "height": height,
        "title": {"text": {"expr": title}, "anchor": "start", "fontSize": 12, "fontWeight": "normal"},
        "params": [zoom, choice],
        "layer": layers,
        "usermeta": CANVAS,
    }
    return json.dumps(spec)


def _scale(domain: tuple[float, float] | None) -> alt.Scale:
    alt = _altair()
    return alt.Scale(zero=False) if domain is None else alt.Scale(domain=list(domain), nice=False)


def ellipse_layer(
    outlines: np.ndarray, classes: list[str], class_names: list[str], vertices: int, color: str | None = None
) -> alt.Chart:
    """1-sigma outlines, one closed line per point, in the point's class colour (or one `color`)."""
    alt = _altair()
    n = len(outlines) // vertices
    frame = pd.DataFrame({
        "x": outlines[:, 0], "y": outlines[:, 1],
        "point": np.repeat(np.arange(n), vertices), "order": np.tile(np.arange(vertices), n),
        "class": np.repeat(classes, vertices),
    })  # fmt: skip
    stroke = (
        alt.value(color)
        if color
        else alt.Color("class:N", sort=class_names, scale=alt.Scale(scheme=PALETTE), legend=None)
    )
    return (
        alt.Chart(frame)
        .mark_line(strokeWidth=2 if color else 1, opacity=0.9 if color else 0.7)
        .encode(x="x:Q", y="y:Q", detail="point:N", order="order:Q", color=stroke)
    )


def prior_layer(coords: np.ndarray, images: list[str]) -> alt.Chart:
    """Random z ~ N(0, I) as black crosses; the decoded image on hover."""
    alt = _altair()
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "sample": np.arange(len(coords)), "image": images})
    return (
        alt.Chart(frame)
        .mark_point(shape="cross", color="black", filled=True, size=70, opacity=0.9)
        .encode(x="x:Q", y="y:Q", tooltip=["sample:Q", "image:N"])
    )


def yours_layer(coords: np.ndarray) -> alt.Chart:
    """One point the reader made (their own digit's μ): a large black cross with a white rim, to stand
    out inside a dense cluster where the prior overlay's small crosses would be lost."""
    alt = _altair()
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "what": "your digit"})
    return (
        alt.Chart(frame)
        .mark_point(shape="cross", color="black", filled=True, size=320, stroke="white", strokeWidth=2, opacity=1)
        .encode(x="x:Q", y="y:Q", tooltip=["what:N"])
    )


def image_layer(coords: np.ndarray, images: list[str], size_px: int) -> alt.Chart:
    """Images drawn at data coordinates (the decoded manifold under the scatter)."""
    alt = _altair()
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "url": images})
    return (
        alt.Chart(frame).mark_image(width=size_px, height=size_px, opacity=0.55).encode(x="x:Q", y="y:Q", url="url:N")
    )


def step_chart(frame: pd.DataFrame, value: str, title: str, height: int = 180) -> alt.Chart:
    """A small line chart over interpolation steps, one line per path (linear, slerp). What it shows is the
    chart's title, across the top: as the y axis's title it was cut to the chart's 180 px height."""
    alt = _altair()
    return (
        alt.Chart(frame, height=height, title=alt.TitleParams(title, anchor="start", fontSize=13))
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{value}:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("path:N", title="path"),
            tooltip=["path:N", "step:Q", alt.Tooltip(f"{value}:Q", format=".2f")],
        )
    )


def path_layer(coords: np.ndarray, images: list[str] | None = None) -> alt.LayerChart:
    """An interpolation path: a black line through numbered steps, decoded image on hover."""
    alt = _altair()
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "step": np.arange(len(coords))})
    if images is not None:
        frame["image"] = images
    line = alt.Chart(frame).mark_line(color="black", strokeWidth=2).encode(x="x:Q", y="y:Q", order="step:Q")
    tooltip = ["step:Q"] + (["image:N"] if images is not None else [])
    points = alt.Chart(frame).mark_point(color="black", filled=True, size=60).encode(x="x:Q", y="y:Q", tooltip=tooltip)
    return line + points


LOSS_TERMS = {"loss": "total", "recon": "reconstruction", "kl": "KL"}  # history key -> the chart's name


def loss_chart(history: list[dict], height: int = 260) -> alt.Chart:
    """Reconstruction, KL and total loss per epoch, train (solid) and test (dashed)."""
    alt = _altair()
    rows = []
    for record in history:
        for split in ("train", "test"):
            for term, name in LOSS_TERMS.items():
                value = record.get(f"{split}_{term}")
                if value is not None:
                    rows.append({"epoch": record["epoch"], "split": split, "term": name, "nats": value})
    frame = pd.DataFrame(rows, columns=["epoch", "split", "term", "nats"])
    base = alt.Chart(frame, height=height).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),  # one epoch: "1", not "1.000000"
        y=alt.Y("nats:Q", title="nats per image", scale=alt.Scale(zero=False)),
        # three distinct hues: Streamlit's default palette gave total and reconstruction two close blues
        color=alt.Color(
            "term:N",
            sort=list(LOSS_TERMS.values()),
            scale=alt.Scale(domain=list(LOSS_TERMS.values()), range=["#1f4e9a", "#e8871e", "#2ca02c"]),
        ),
        detail="split:N",
        tooltip=["epoch:Q", "split:N", "term:N", alt.Tooltip("nats:Q", format=".2f")],
    )
    # Lines and points as two layers: drawn on the lines, the dash shows in the legend as a dashed line
    # (with mark_line(point=True) the legend showed neither line nor dash, only the words).
    lines = base.mark_line().encode(strokeDash=alt.StrokeDash("split:N", sort=["train", "test"]))
    return lines + base.mark_point(filled=True, size=25)


TIMELINE_MIN_HALF_WIDTH = 3.0  # N(0, I) puts 99.7% of draws within ±3: the frame an untrained model starts in


def timeline_domain(coords: list[np.ndarray]) -> tuple[float, float]:
    """One square frame for every epoch of a training run, so stepping through them the axes stay put:
    at least ±3, and wide enough for every point of every epoch."""
    widest = max((float(np.abs(c).max()) for c in coords if len(c)), default=0.0)
    half = max(TIMELINE_MIN_HALF_WIDTH, 1.05 * widest)
    return (-half, half)


def timeline_chart(
    coords: np.ndarray, labels: np.ndarray, class_names: list[str], epoch: int, domain=None, height: int = 280
) -> alt.Chart:
    """Test digits' means after one epoch of training, coloured by class, in a square frame drawn square
    (equal units on both axes, so distances are not stretched)."""
    alt = _altair()
    frame = scatter_frame(coords, labels, class_names)
    title = "untrained (epoch 0)" if epoch == 0 else f"after epoch {epoch}"
    return (
        latent_scatter(frame, class_names, height=height, domain=domain or timeline_domain([coords]))
        .properties(
            # "pad": Streamlit's default "fit" squeezes the axes and the legend into the size, so the square
            # would not stay one (as on the latent page's decoded map)
            width=height,
            autosize={"type": "pad"},
            title=alt.TitleParams(title, anchor="start", fontSize=13),
        )
        .configure_legend(orient="bottom", columns=5)
    )  # beside the plot, it overflowed half a 1024 px page
