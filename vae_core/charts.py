"""Altair chart builders: arrays in, a chart out. They never call streamlit."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

__all__ = ["latent_scatter", "path_layer", "loss_chart", "scatter_frame"]

POINT_SIZE = 18  # marker area in px^2: small enough for a few thousand points
PALETTE = "tableau10"  # ten distinguishable class colours


def scatter_frame(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    indices: np.ndarray | None = None,
    images: list[str] | None = None,
) -> pd.DataFrame:
    """One row per point: x, y, class name, test index and (optionally) an image data URL."""
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
    frame: pd.DataFrame, x_title: str, y_title: str, class_names: list[str], height: int = 520
) -> alt.Chart:
    """Points coloured by class, a legend of class names, and the digit itself in the tooltip."""
    tooltip = ["class:N", "index:Q"] + (["image:N"] if "image" in frame else [])
    return (
        alt.Chart(frame, height=height)
        .mark_circle(size=POINT_SIZE, opacity=0.75)
        .encode(
            x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "class:N", sort=class_names, scale=alt.Scale(scheme=PALETTE), legend=alt.Legend(title="class")
            ),
            tooltip=tooltip,
        )
        .interactive()
    )


def path_layer(coords: np.ndarray, images: list[str] | None = None) -> alt.LayerChart:
    """An interpolation path: a black line through numbered steps, decoded image on hover."""
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "step": np.arange(len(coords))})
    if images is not None:
        frame["image"] = images
    line = alt.Chart(frame).mark_line(color="black", strokeWidth=2).encode(x="x:Q", y="y:Q", order="step:Q")
    tooltip = ["step:Q"] + (["image:N"] if images is not None else [])
    points = alt.Chart(frame).mark_point(color="black", filled=True, size=60).encode(x="x:Q", y="y:Q", tooltip=tooltip)
    return line + points


def loss_chart(history: list[dict], height: int = 260) -> alt.Chart:
    """Reconstruction, KL and total loss per epoch, train (solid) and test (dashed)."""
    rows = []
    for record in history:
        for split in ("train", "test"):
            for term, name in (("loss", "total"), ("recon", "reconstruction"), ("kl", "KL")):
                value = record.get(f"{split}_{term}")
                if value is not None:
                    rows.append({"epoch": record["epoch"], "split": split, "term": name, "nats": value})
    frame = pd.DataFrame(rows, columns=["epoch", "split", "term", "nats"])
    return (
        alt.Chart(frame, height=height)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("nats:Q", title="nats per image", scale=alt.Scale(zero=False)),
            color=alt.Color("term:N", sort=["total", "reconstruction", "KL"]),
            strokeDash=alt.StrokeDash("split:N", sort=["train", "test"]),
            tooltip=["epoch:Q", "split:N", "term:N", alt.Tooltip("nats:Q", format=".2f")],
        )
    )
