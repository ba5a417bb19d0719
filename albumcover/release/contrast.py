"""Colour and legibility: WCAG 2.x relative luminance and contrast ratio, the worst contrast of
a text colour against the pixels behind it, and the least band opacity that makes it read."""

from __future__ import annotations

import colorsys

import numpy as np

MIN_CONTRAST = 4.5  # WCAG 2.x AA for normal text
SAMPLES = 160  # background pixels per side sampled when measuring contrast


def relative_luminance(rgb) -> np.ndarray:
    """WCAG 2.x relative luminance of sRGB colours: (..., 3) uint8-range values -> (...)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(a, b) -> np.ndarray:
    """WCAG contrast ratio (1..21) between colours ``a`` and ``b`` (broadcast, (..., 3))."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def sample(pixels: np.ndarray, box) -> np.ndarray:
    """The pixels of ``box`` on a grid of at most :data:`SAMPLES` per side: (N, 3)."""
    x0, y0, x1, y1 = box
    crop = pixels[y0:y1, x0:x1]
    step = max(1, max(crop.shape[:2]) // SAMPLES)
    return crop[::step, ::step].reshape(-1, 3)


def texture(pixels: np.ndarray, box, scale: int) -> float:
    """How busy ``box`` is at the scale of the text: the mean absolute difference (0..1,
    sRGB-encoded luminance) between the pixels of its :func:`sample` grid and their average
    over a ``scale``-pixel window (e.g. the letters' size). Smooth art (flat colour, gradients,
    soft photographs) stays near 0.02; noise and confetti as fine as the letters or finer, 0.1
    to 0.3."""
    from PIL import Image, ImageFilter

    x0, y0, x1, y1 = box
    crop = pixels[y0:y1, x0:x1]
    step = max(1, max(crop.shape[:2]) // SAMPLES)
    grid = crop[::step, ::step].astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    if grid.size == 0:
        return 0.0
    cells = Image.fromarray(grid.round().clip(0, 255).astype(np.uint8), "L")
    window = max(1.0, scale / step / 2)
    local = np.asarray(cells.filter(ImageFilter.BoxBlur(window)), dtype=np.float64)
    return float(np.abs(grid - local).mean() / 255.0)


def candidates(pixels: np.ndarray) -> list[tuple[int, int, int]]:
    """Text colours to try: a light and a dark tint of the art's mean hue, then white, black."""
    r, g, b = (pixels.reshape(-1, 3)[::97].mean(axis=0) / 255.0).tolist()
    hue, _, sat = colorsys.rgb_to_hls(r, g, b)
    tints = [
        tuple(round(v * 255) for v in colorsys.hls_to_rgb(hue, lightness, min(sat, 0.4)))
        for lightness in (0.94, 0.1)
    ]
    return [*tints, (255, 255, 255), (16, 16, 16)]


def worst(color, samples: np.ndarray) -> float:
    """The lowest contrast ratio between ``color`` and any of ``samples`` ((N, 3))."""
    return float(contrast_ratio(np.asarray(color)[None], samples).min()) if len(samples) else 21.0


def band_alpha(color, band, samples: np.ndarray, least: float = 0.3) -> float:
    """The least opacity (from ``least`` up) of a ``band`` colour over ``samples`` at which
    ``color`` reads."""
    for alpha in np.arange(least, 1.0001, 0.05):
        blended = np.round(samples * (1 - alpha) + np.asarray(band) * alpha)
        if worst(color, blended) >= MIN_CONTRAST + 0.05:
            return float(round(alpha, 2))
    return 1.0
