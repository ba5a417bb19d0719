"""ZeroGPU's rules, tested without ZeroGPU: the versions the Space pins, the duration and size
each painting asks for, where the model is placed and when the denoiser is compiled ahead of
time (space/zerogpu.py)."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from albumcover.paint.families import FAMILIES
from albumcover.paint.generator import GenerationSettings
from space import zerogpu
from space.zerogpu import GpuCosts
from tests.tiny_models import save_tiny_sd

ROOT = Path(__file__).resolve().parents[2]


def test_the_space_pins_what_zerogpu_builds():
    """The README's front matter and requirements.txt, as the Space reads them."""
    front = zerogpu.read_front_matter((ROOT / "README.md").read_text())
    torch_pin = zerogpu.read_pin((ROOT / "requirements.txt").read_text(), "torch")
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert zerogpu.check_space_versions(front.get("python_version"), torch_pin) == []


def test_local_setup_swaps_only_torch():
    """requirements-cpu.txt (what make setup uses instead of the Space's torch) pins torch and
    nothing else, and this environment runs one of the two pinned torch versions."""
    cpu = (ROOT / "requirements-cpu.txt").read_text()
    pins = [line for line in cpu.splitlines() if line.strip() and not line.startswith("#")]
    assert pins == [f"torch=={zerogpu.read_pin(cpu, 'torch')}"]
    space = zerogpu.read_pin((ROOT / "requirements.txt").read_text(), "torch")
    assert torch.__version__.split("+")[0] in {zerogpu.read_pin(cpu, "torch"), space}


@pytest.mark.parametrize(
    "python, torch_pin, wrong",
    [
        ("3.10.13", "2.11.0", []),
        ("3.12.12", "2.8.0", []),
        ("3.11.7", "2.11.0", ["python_version"]),
        ("3.12.12", "2.13.0", ["torch"]),
        ("3.10.12", "2.3.1", ["python_version", "torch"]),
        (None, None, ["python_version", "torch"]),  # no front matter key, an unpinned torch
    ],
)
def test_unlisted_combinations_are_refused(python, torch_pin, wrong):
    problems = zerogpu.check_space_versions(python, torch_pin)
    assert [("python_version" if "python" in p else "torch") for p in problems] == wrong
    for problem in problems:  # each says what is allowed and where the list comes from
        assert zerogpu.ZEROGPU_SOURCE in problem and zerogpu.ZEROGPU_CHECKED in problem
        allowed = zerogpu.ZEROGPU_PYTHON if "python" in problem else zerogpu.ZEROGPU_TORCH
        assert all(version in problem for version in allowed)


def test_front_matter_and_pins_are_read_as_the_space_reads_them():
    readme = '---\ntitle: x\npython_version: "3.12.12"\nmodels:\n  - a/b\n---\n# x\nkey: no\n'
    assert zerogpu.read_front_matter(readme) == {"title": "x", "python_version": "3.12.12"}
    assert zerogpu.read_front_matter("# no front matter\n---\n") == {}
    assert zerogpu.read_front_matter("---\ntitle: never closed\n") == {}
    requirements = "torchaudio==2.11.0\n# torch==1.0\ntorch == 2.10.0  # ZeroGPU\n"
    assert zerogpu.read_pin(requirements, "torch") == "2.10.0"
    assert zerogpu.read_pin("torch>=2.8\n", "torch") is None  # a range builds whatever is newest
    assert zerogpu.read_pin('torch==2.9.1; sys_platform == "linux"\n', "torch") == "2.9.1"


# --- the duration each painting asks for --------------------------------------------------------

# Recorded by `python -m benchmarks.bench_generate --runs 5 --threads 1` (benchmarks/README.md,
# "The wrapper's overhead"): tiny random SD, 64 x 64, 10 steps DPM-Solver++, guidance 7.5, one
# CPU thread, median of 5. Per call, seconds: text encoding, denoising (20 UNet passes per
# image), VAE decode, safety checker + PIL, and the whole CoverGenerator.generate call.
RECORDED = {
    1: dict(text=0.011, denoise=0.975, decode=0.068, safety=0.007, total=1.114),
    4: dict(text=0.012, denoise=3.391, decode=0.228, safety=0.010, total=3.699),
}
TINY = GenerationSettings(steps=10, guidance_scale=7.5, width=64, height=64)


def test_duration_is_within_1_5x_of_the_recorded_time():
    """Costs taken from the recorded one-image call's parts predict every recorded call: the
    ask covers the real time (a call that outlives it is cut off) and is at most 1.5x of it."""
    one = RECORDED[1]
    costs = GpuCosts(
        unet_pass=one["denoise"] / 20,
        decode=one["decode"],
        fixed=one["text"] + one["safety"] + (one["total"] - sum(list(one.values())[:4])),
        size=64,
    )
    for images, recorded in RECORDED.items():
        settings = dataclasses.replace(TINY, num_images=images)
        # whole seconds are too coarse for a 1 s call: the ask before rounding up
        asked = zerogpu.DURATION_MARGIN * zerogpu.estimate_seconds(settings, costs)
        assert recorded["total"] <= asked <= 1.5 * recorded["total"], (images, asked)


def test_duration_follows_the_request():
    sdxl = FAMILIES["sdxl"]
    costs = GpuCosts.for_family(sdxl)
    base = GenerationSettings(steps=25, guidance_scale=6.0, num_images=1, width=1024, height=1024)
    one = zerogpu.gpu_duration(base, costs)

    def ask(**change):
        return zerogpu.gpu_duration(dataclasses.replace(base, **change), costs)

    assert ask(steps=50) > one and ask(num_images=4) > ask(num_images=2) > one
    assert ask(width=1536, height=1536) > one > ask(width=512, height=512)
    assert ask(guidance_scale=1.0) < one  # no guidance: one pass per step, not two
    # a family's cost per step counts: FLUX asks more than SDXL for the same request, and SD
    # 1.5 at its own 512 px less
    assert zerogpu.gpu_duration(base, GpuCosts.for_family(FAMILIES["flux"])) > one
    sd1 = dataclasses.replace(base, width=512, height=512)
    assert zerogpu.gpu_duration(sd1, GpuCosts.for_family(FAMILIES["sd1"])) < one
    # a tiny autoencoder decodes for less
    fast = dataclasses.replace(base, steps=4, guidance_scale=1.0)
    tiny = zerogpu.estimate_seconds(fast, GpuCosts.for_family(FAMILIES["sd1"], tiny_vae=True))
    assert tiny < zerogpu.estimate_seconds(fast, GpuCosts.for_family(FAMILIES["sd1"]))
    # bounds: the cap, and at least a second
    biggest = dataclasses.replace(base, steps=100, num_images=4, width=1536, height=1536)
    assert zerogpu.gpu_duration(biggest, GpuCosts.for_family(FAMILIES["flux"])) == 300
    assert zerogpu.gpu_duration(base, GpuCosts(0.0, 0.0, 0.0)) == 1


def test_duration_is_the_family_cost_spelled_out():
    """The default SDXL request (25 guided steps, 2 covers at 1024 px): 1.25 x (5 s + 2 x (50
    passes x half the family's step cost + a decode of two passes))."""
    sdxl = FAMILIES["sdxl"]
    settings = GenerationSettings(
        steps=25, guidance_scale=6.0, num_images=2, width=1024, height=1024
    )
    half = sdxl.gpu_seconds_per_step / 2
    expected = math.ceil(1.25 * (5 + 2 * (50 * half + 2 * half)))
    assert zerogpu.gpu_duration(settings, GpuCosts.for_family(sdxl)) == expected


# --- the GPU size ------------------------------------------------------------------------------


def test_gpu_size_by_need():
    gib = 2**30
    cover = GenerationSettings(num_images=2, width=1024, height=1024)
    assert zerogpu.gpu_size(7 * gib, cover) == "large"  # SDXL in fp16: ~7 GB
    most = GenerationSettings(num_images=4, width=1536, height=1536)
    assert zerogpu.gpu_size(2 * gib, most) == "large"  # SD 1.5 at its largest request
    assert zerogpu.gpu_size(33 * gib, most) == "xlarge"  # FLUX.1 with T5 in bf16
    assert zerogpu.gpu_size(33 * gib, GenerationSettings(num_images=1)) == "large"
    assert zerogpu.gpu_size(50 * gib, GenerationSettings(num_images=1)) == "xlarge"


def test_model_bytes_counts_the_weights(tmp_path):
    """A loaded pipeline's weights are the bytes its safetensors files hold (less headers)."""
    from diffusers import StableDiffusionPipeline

    folder = save_tiny_sd(tmp_path / "tiny_sd")
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    on_disk = sum(f.stat().st_size for f in folder.rglob("*.safetensors"))
    counted = zerogpu.model_bytes(pipe)
    assert 0.9 * on_disk <= counted <= on_disk
    assert zerogpu.model_bytes(object()) == 0


# --- placement and ahead-of-time compilation ---------------------------------------------------


def test_placement():
    assert zerogpu.model_device(zero_gpu=True) == "cuda"  # at start-up, outside @spaces.GPU
    assert zerogpu.model_device(zero_gpu=False) is None  # the best device here


@pytest.mark.parametrize(
    "requested, zero_gpu, version, on, note",
    [
        (False, True, "2.11.0", False, None),  # off unless asked
        (False, False, "2.13.0+cpu", False, None),
        (True, True, "2.11.0+cu130", True, None),
        (True, True, "2.8.0", True, None),
        (True, False, "2.11.0", False, "ZeroGPU only"),  # elsewhere: eager, and said so
        (True, True, "2.5.1", False, "needs torch >= 2.8"),
    ],
)
def test_aot_switch(requested, zero_gpu, version, on, note):
    wanted, why = zerogpu.aot_wanted(requested, zero_gpu, version)
    assert wanted is on
    assert (why is None) if note is None else (note in why)
