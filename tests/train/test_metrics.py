"""train.metrics: FID, KID, CLIP score and retrieval on feature arrays."""

import numpy as np
import pytest
import scipy.linalg

from train.metrics import clip_score, frechet_distance, kernel_inception_distance, retrieval_scores


def _features(n=300, d=8, seed=0, shift=0.0, scale=1.0):
    """n samples of one correlated Gaussian (the same for every seed), scaled and shifted."""
    mixing = np.random.default_rng(1234).normal(size=(d, d)) / np.sqrt(d)
    return np.random.default_rng(seed).normal(size=(n, d)) @ mixing * scale + shift


def _fid_with_scipy(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)


def test_fid_is_zero_for_identical_sets_and_grows_with_shift():
    a = _features()
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(a, a[::-1]) == pytest.approx(0, abs=1e-8)  # order does not matter
    near, far = _features(seed=1, shift=0.5), _features(seed=1, shift=2.0)
    assert 0 < frechet_distance(a, _features(seed=1)) < frechet_distance(a, near)
    assert frechet_distance(a, near) < frechet_distance(a, far)
    assert frechet_distance(a, _features(seed=1, scale=3)) > frechet_distance(a, _features(seed=1))


def test_fid_matches_the_scipy_sqrtm_formula_and_is_symmetric():
    a, b = _features(seed=0), _features(seed=1, shift=0.3, scale=1.5)
    expected = _fid_with_scipy(a, b)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)
    # a pure mean shift of every point adds exactly |shift|^2
    assert frechet_distance(a, a + 0.5) == pytest.approx(8 * 0.25, rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions():
    a = _features(n=10, d=32)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    b = _features(n=12, d=32, seed=3)
    assert np.isfinite(frechet_distance(a, b)) and frechet_distance(a, b) > 0


def _mmd_unbiased(x, y):
    d = x.shape[1]
    k = lambda p, q: (p @ q.T / d + 1) ** 3  # noqa: E731
    m = len(x)
    off = lambda g: (g.sum() - np.trace(g)) / (m * (m - 1))  # noqa: E731
    return off(k(x, x)) + off(k(y, y)) - 2 * k(x, y).mean()


def test_kid_is_about_zero_for_one_distribution_and_grows_with_shift():
    a = _features(n=1000)
    kid = lambda b: kernel_inception_distance(a, b, num_subsets=20, subset_size=200)  # noqa: E731
    same, same_std = kid(a)
    other, _ = kid(_features(n=1000, seed=1))
    near, _ = kid(_features(n=1000, seed=1, shift=0.3))
    far, _ = kid(_features(n=1000, seed=1, shift=1.0))
    # unbiased: scatters around 0 (either sign) for one distribution, O(1/subset_size)
    assert abs(same) < 0.1 and abs(other) < 0.1 and 0 < same_std < 0.1
    assert near > 0.3 and far > 10 * near


def test_kid_equals_the_unbiased_mmd_when_one_subset_covers_everything():
    a, b = _features(n=40, seed=0), _features(n=40, seed=1, shift=0.4)
    mean, std = kernel_inception_distance(a, b, num_subsets=3, subset_size=1000)
    assert mean == pytest.approx(_mmd_unbiased(a, b), rel=1e-9)
    assert std == pytest.approx(0, abs=1e-9)  # every subset is the whole set, reordered


def test_clip_score_definition():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    assert clip_score(images, images) == pytest.approx(100)
    assert clip_score(images, 3 * images) == pytest.approx(100)  # cosine: scale-free
    assert clip_score(images, -images) == 0  # mean clamped at zero
    assert clip_score(images, texts) == pytest.approx(clip_score(texts, images))
    norms = np.linalg.norm(images, axis=1) * np.linalg.norm(texts, axis=1)
    cosine = (images * texts).sum(1) / norms
    assert clip_score(images, texts) == pytest.approx(max(100 * cosine.mean(), 0))
    orthogonal = np.eye(4)
    assert clip_score(orthogonal, orthogonal[[1, 2, 3, 0]]) == pytest.approx(0)


def test_retrieval_scores_reward_matching_prompts():
    rng = np.random.default_rng(0)
    texts = rng.normal(size=(20, 32))
    images = texts + 0.3 * rng.normal(size=texts.shape)
    matched = retrieval_scores(images, texts)
    assert matched["r1"] == 1 and matched["mean_rank"] == 1 and matched["chance_r1"] == 1 / 20
    shuffled = retrieval_scores(images, texts[rng.permutation(20)])
    assert shuffled["r1"] < matched["r1"] and shuffled["mean_rank"] > matched["mean_rank"]
    # several images per prompt: targets say which prompt each image belongs to
    repeated = np.repeat(texts, 2, axis=0) + 0.3 * rng.normal(size=(40, 32))
    assert retrieval_scores(repeated, texts, np.repeat(np.arange(20), 2))["r1"] == 1
    # a collapsed model (every image identical) ties its own prompt with itself only if the
    # prompts are identical too; ties count against it
    assert retrieval_scores(np.ones((3, 4)), np.ones((3, 4)))["r1"] == 0
    assert retrieval_scores(np.ones((3, 4)), np.ones((3, 4)))["mean_rank"] == 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: frechet_distance(np.ones(5), np.ones((5, 2))), "2-D"),
        (lambda: frechet_distance(np.ones((1, 2)), np.ones((5, 2))), "at least 2 rows"),
        (lambda: frechet_distance(np.ones((3, 2)), np.ones((3, 4))), "widths differ"),
        (lambda: kernel_inception_distance(np.full((3, 2), np.nan), np.ones((3, 2))), "NaN"),
        (lambda: kernel_inception_distance(np.ones((3, 2)), np.ones((3, 2)), num_subsets=0),
         "num_subsets"),
        (lambda: clip_score(np.ones((3, 2)), np.ones((4, 2))), "3 images vs 4 texts"),
        (lambda: clip_score(np.zeros((1, 2)), np.ones((1, 2))), "all zeros"),
        (lambda: retrieval_scores(np.ones((3, 2)), np.ones((2, 2))), "index the 2 prompts"),
        (lambda: retrieval_scores(np.ones((3, 2)), np.ones((3, 2)), [0, 1]), r"must be \(3,\)"),
    ],
)  # fmt: skip
def test_bad_inputs_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
