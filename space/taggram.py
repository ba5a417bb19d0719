"""The taggram Analyze shows: the song's strongest tags over time, drawn as a heatmap."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from albumcover.ear.audio import SAMPLE_RATE
from albumcover.ear.features import HOP_LENGTH, PATCH_FRAMES

# Headless server: no GUI backend, ever. The taggram is drawn on an explicit Agg canvas (no
# pyplot state shared between request threads); this also covers any pyplot use downstream.
matplotlib.use("Agg")

TAGGRAM_ROWS = 10
PATCH_SECONDS = PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE


def draw_taggram(result, rows: int = TAGGRAM_ROWS) -> np.ndarray:
    """The top ``rows`` tags of a tagger ``result`` over time as a heatmap: an (H, W, 3) uint8
    RGB picture."""
    order = np.argsort(result.taggram.mean(axis=0))[::-1][:rows]
    n_patches = result.taggram.shape[0]
    fig = Figure(figsize=(8, 0.3 * rows + 1.2), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    extent = (0.0, n_patches * PATCH_SECONDS, len(order) - 0.5, -0.5)  # x in seconds
    image = ax.imshow(result.taggram[:, order].T, cmap="magma", vmin=0, vmax=1, extent=extent)
    ax.set_aspect("auto")
    ax.set_yticks(range(len(order)), [result.labels[i] for i in order])
    ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=ax, pad=0.01, label="probability")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
