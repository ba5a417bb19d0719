"""Image-generation metrics as pure functions on feature arrays (numpy, float64 inside).

Features come from any encoder; ``train.evaluate`` feeds CLIP image/text embeddings, which makes
the distribution metrics "CLIP-FID"/"CLIP-KID" (clean-fid's ``model_name="clip_vit_b_32"``,
Kynkäänniemi et al. 2023, "The Role of ImageNet Classes in Fréchet Inception Distance") rather
than the InceptionV3 numbers most papers print: same formulas, different feature space, so the
values are not comparable with Inception FID.
"""

from __future__ import annotations

import numpy as np


def _as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, dim) array, got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} vs {b.shape[1]}")


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, d) and (m, d).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``, covariances with ddof=1.
    The trace of the matrix square root is taken from the eigenvalues of the symmetric PSD matrix
    ``S_a^(1/2) S_b S_a^(1/2)``, which has the same spectrum as ``S_a S_b`` but stays real and
    stable when the covariances are singular (fewer samples than dimensions).
    """
    a, b = _as_features(a, "a", 2), _as_features(b, "b", 2)
    _same_dim(a, b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))  # rounding can leave -1e-12 for identical sets


def kernel_inception_distance(
    a, b, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
    ``k(x, y) = (x.y / d + 1)^3``, averaged over ``num_subsets`` random subsets of
    ``min(subset_size, n, m)`` rows of each set. Returns (mean, std) over subsets; ~0 (either
    sign) when both sets come from one distribution.
    """
    a, b = _as_features(a, "a", 2), _as_features(b, "b", 2)
    _same_dim(a, b)
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(
            f"need num_subsets >= 1 and subset_size >= 2, got {num_subsets} and {subset_size}"
        )
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / d + 1) ** 3
        k_yy = (y @ y.T / d + 1) ** 3
        k_xy = (x @ y.T / d + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates[i] = within - 2 * k_xy.sum() / (m * m)
    return float(estimates.mean()), float(estimates.std())


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("a feature vector is all zeros: its cosine similarity is undefined")
    return x / norms


def clip_score(image_features, text_features) -> float:
    """CLIP score as torchmetrics computes it: ``max(mean_i 100 * cos(image_i, text_i), 0)``
    over paired rows of (n, d) image and (n, d) text embeddings."""
    images = _as_features(image_features, "image_features")
    texts = _as_features(text_features, "text_features")
    _same_dim(images, texts)
    if len(images) != len(texts):
        raise ValueError(f"clip_score pairs rows: {len(images)} images vs {len(texts)} texts")
    cosine = (_normalize(images) * _normalize(texts)).sum(1)
    return float(max(100 * cosine.mean(), 0.0))


def retrieval_scores(image_features, text_features, targets=None) -> dict[str, float]:
    """Image-to-prompt retrieval: rank every prompt by cosine similarity to each image and see
    where the image's own prompt lands.

    Args:
        image_features: (n_images, d).
        text_features: (n_prompts, d), one row per distinct prompt.
        targets: (n_images,) index of each image's prompt; default ``arange(n_images)``.
    Returns: {"r1": fraction ranked first, "r5", "mean_rank", "median_rank", "chance_r1"}.
        Ranks start at 1; a tie with another prompt counts against the image (so a model that
        maps everything to one point cannot score).
    """
    images = _normalize(_as_features(image_features, "image_features"))
    texts = _normalize(_as_features(text_features, "text_features"))
    _same_dim(images, texts)
    targets = np.arange(len(images)) if targets is None else np.asarray(targets)
    if targets.shape != (len(images),) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be ({len(images)},) integers, got {targets.shape}")
    if targets.min() < 0 or targets.max() >= len(texts):
        raise ValueError(f"targets must index the {len(texts)} prompts")
    similarity = images @ texts.T
    own = similarity[np.arange(len(images)), targets][:, None]
    # own prompt + every other prompt at least as similar (exact: `own` is read from `similarity`)
    ranks = (similarity >= own).sum(1)
    return {
        "r1": float((ranks == 1).mean()),
        "r5": float((ranks <= 5).mean()),
        "mean_rank": float(ranks.mean()),
        "median_rank": float(np.median(ranks)),
        "chance_r1": 1.0 / len(texts),
    }
