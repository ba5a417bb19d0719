"""The PyTorch port against the original TensorFlow outputs, and the strict weight converter."""

import numpy as np
import pytest
import torch

from albumcover.ear.musicnn import (
    MSD_LABELS,
    MTT_LABELS,
    VGG,
    Musicnn,
    WeightsError,
    build_model,
    convert_tf_weights,
    load_tf_weights,
)
from albumcover.ear.tfbundle import read_checkpoint
from albumcover.ear.weights import installed_weights_dir

MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")


@pytest.fixture(scope="module")
def tf_vars():
    """Each model's TF variables, read once (they are not modified by the tests)."""
    folder = installed_weights_dir()
    if folder is None:
        pytest.fail("the musicnn package is not installed (make setup installs it --no-deps)")
    return {model: read_checkpoint(folder / model) for model in MODELS}


@pytest.fixture(scope="module")
def outputs(tf_vars, reference):
    """Each ported model's logits and features on the reference input patches."""
    patches = torch.from_numpy(reference["input_patches"])
    results = {}
    for model in MODELS:
        network = load_tf_weights(build_model(model), tf_vars[model])
        with torch.inference_mode():
            logits, features = network.forward_features(patches)
        results[model] = (logits.numpy(), {k: v.numpy() for k, v in features.items()})
    return results


@pytest.mark.parametrize("model", MODELS)
def test_taggram_matches_the_original(outputs, reference, model):
    logits, _ = outputs[model]
    taggram = 1 / (1 + np.exp(-logits))
    expected = reference[f"{model}.taggram"]
    assert taggram.shape == expected.shape == (10, 50)
    assert np.abs(taggram - expected).max() <= 1e-5
    labels = MTT_LABELS if model.startswith("MTT") else MSD_LABELS
    assert labels == list(reference[f"{model}.labels"])


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_penultimate_matches_the_original(outputs, reference, tf_vars, model):
    _, features = outputs[model]
    ours, expected = features["penultimate"], reference[f"{model}.penultimate"]
    assert ours.shape == expected.shape == (10, 200)
    # The original extractor returns the FIRST patch's penultimate for every patch: its loop
    # over later batches concatenates the stale first-batch `penultimate_` (and cnn1..3), not
    # the values it just computed. The reference therefore holds one row ten times ...
    assert np.all(expected == expected[0])
    # ... which the port matches; it returns each patch's own activations.
    assert np.abs(ours[0] - expected[0]).max() <= 1e-5
    assert np.abs(ours - ours[0]).max() > 0.1
    # Every row is checked through the original's output layer, in NumPy straight from the
    # checkpoint: sigmoid(penultimate @ W + b) must give the reference taggram.
    kernel, bias = tf_vars[model]["dense_1/kernel"], tf_vars[model]["dense_1/bias"]
    taggram = 1 / (1 + np.exp(-(ours.astype(np.float64) @ kernel + bias)))
    assert np.abs(taggram - reference[f"{model}.taggram"]).max() <= 1e-5


def test_musicnn_features_in_the_original_layout(outputs):
    _, features = outputs["MTT_musicnn"]
    shapes = {name: value.shape for name, value in features.items()}
    assert shapes == {
        "timbral": (10, 187, 408),
        "temporal": (10, 187, 153),
        "cnn1": (10, 187, 64),
        "cnn2": (10, 187, 64),
        "cnn3": (10, 187, 64),
        "mean_pool": (10, 753),
        "max_pool": (10, 753),
        "penultimate": (10, 200),
    }
    # The pools run over the dense concatenation [front-end 561 | cnn1 | cnn2 | cnn3] in time.
    np.testing.assert_allclose(features["max_pool"][:, 561 + 128 :], features["cnn3"].max(1))
    np.testing.assert_allclose(
        features["mean_pool"][:, :408], features["timbral"].mean(1), rtol=1e-5, atol=1e-6
    )


def test_vgg_features_in_the_original_layout(outputs):
    _, features = outputs["MSD_vgg"]
    assert {name: value.shape for name, value in features.items()} == {
        "pool1": (10, 92, 48, 128),
        "pool2": (10, 46, 24, 128),
        "pool3": (10, 23, 12, 128),
        "pool4": (10, 11, 6, 128),
        "pool5": (10, 2, 1, 128),
    }


def test_musicnn_takes_other_input_lengths():
    network = Musicnn().eval()
    with torch.inference_mode():
        assert network(torch.zeros(2, 100, 96)).shape == (2, 50)


def test_vgg_rejects_other_input_lengths():
    with pytest.raises(ValueError, match=r"\(187, 96\) patches"):
        VGG().eval()(torch.zeros(1, 100, 96))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown musicnn model 'MSD_musicnn_big'"):
        build_model("MSD_musicnn_big")


# --- the converter -------------------------------------------------------------------------------


def test_converter_maps_every_parameter_and_skips_optimizer_state(tf_vars):
    model = build_model("MTT_musicnn")
    state = convert_tf_weights(model, tf_vars["MTT_musicnn"])
    assert state.keys() == model.state_dict().keys()
    # layout changes: NHWC conv kernels to (out, in, kh, kw), dense kernels transposed
    kernel = tf_vars["MTT_musicnn"]["conv2d_1/kernel"]  # (7, 67, 1, 204)
    np.testing.assert_array_equal(state["timbral.1.conv.weight"][5, 0, 2, 3], kernel[2, 3, 0, 5])
    mid = tf_vars["MTT_musicnn"]["conv2d_5/kernel"]  # (7, 561, 1, 64) as a Conv1d
    np.testing.assert_array_equal(state["midend.0.conv.weight"][7, 300, 4], mid[4, 300, 0, 7])
    dense = tf_vars["MTT_musicnn"]["dense/kernel"]
    np.testing.assert_array_equal(state["dense.weight"].numpy(), dense.T)
    # Adam slots are skipped, and so is a step counter if there is one
    without = {k: v for k, v in tf_vars["MTT_musicnn"].items() if "Adam" not in k}
    without["global_step"] = np.array(1000, dtype=np.int64)
    convert_tf_weights(model, without)


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_vgg"])
def test_converter_rejects_a_missing_tensor(tf_vars, model):
    variables = dict(tf_vars[model])
    del variables["dense/bias"]
    del variables["batch_normalization_3/moving_variance"]
    with pytest.raises(WeightsError, match="lacks tensors") as info:
        convert_tf_weights(build_model(model), variables)
    assert "dense/bias" in str(info.value)
    assert "batch_normalization_3/moving_variance" in str(info.value)


def test_converter_rejects_an_extra_tensor(tf_vars):
    variables = dict(tf_vars["MTT_vgg"])
    variables["6CNN/kernel"] = np.zeros((3, 3, 128, 128), np.float32)
    with pytest.raises(WeightsError, match="does not use: 6CNN/kernel"):
        convert_tf_weights(build_model("MTT_vgg"), variables)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("conv2d_1/kernel", (7, 66, 1, 204)),  # one frequency bin narrower
        ("conv2d_5/kernel", (7, 561, 2, 64)),  # mid-end kernel that is not (k, C, 1, out)
        ("dense_1/kernel", (50, 200)),  # transposed
        ("dense_1/kernel", (200, 50, 1)),  # wrong rank
        ("batch_normalization_9/gamma", (1505,)),
    ],
)
def test_converter_rejects_a_misshaped_tensor(tf_vars, name, shape):
    variables = dict(tf_vars["MSD_musicnn"])
    variables[name] = np.zeros(shape, np.float32)
    with pytest.raises(WeightsError, match=name):
        convert_tf_weights(build_model("MSD_musicnn"), variables)


def test_converter_rejects_another_dtype(tf_vars):
    variables = dict(tf_vars["MTT_vgg"])
    variables["dense/bias"] = variables["dense/bias"].astype(np.float64)
    with pytest.raises(WeightsError, match="dense/bias: dtype float64"):
        convert_tf_weights(build_model("MTT_vgg"), variables)


def test_converter_rejects_the_other_architecture(tf_vars):
    with pytest.raises(WeightsError):
        convert_tf_weights(build_model("MTT_vgg"), tf_vars["MTT_musicnn"])
