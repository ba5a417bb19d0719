"""The distributor export: size, mode, sRGB ICC, no alpha or EXIF orientation, the size limit,
lettering set after upscaling, and the diffusers x4 upscaler (a tiny random one, in-process)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from albumcover.release.export import (
    DiffusionUpscaler,
    ExportError,
    ExportSettings,
    export_cover,
    srgb_profile,
    to_srgb,
)
from tests.covers_art import art


def opened(export) -> Image.Image:
    image = Image.open(io.BytesIO(export.data))
    image.load()
    return image


def test_default_export_is_a_3000px_srgb_jpeg():
    result = export_cover(art("photo", 512), "Night Drive", "Ana")
    image = opened(result)
    assert image.format == "JPEG" and image.size == (3000, 3000) and image.mode == "RGB"
    assert image.info["icc_profile"] == srgb_profile()
    description = ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
    )
    assert "sRGB" in description
    assert 0x0112 not in image.getexif()  # no orientation tag
    assert len(result.data) <= 10_000_000 and result.quality == 95
    assert result.upscaler.startswith("lanczos")
    # the lettering was set at 3000 px, after upscaling: its sizes are those of a 3000-px cover
    assert result.lettering.image.size == (3000, 3000)
    assert result.lettering.title_size > 100
    assert b"Title: Night Drive\nArtist: Ana" in image.info["comment"]


def test_same_input_same_bytes():
    a = export_cover(art("photo", 256), "Night Drive", "Ana", settings=ExportSettings(size=800))
    b = export_cover(art("photo", 256), "Night Drive", "Ana", settings=ExportSettings(size=800))
    assert a.data == b.data


def test_png_export_has_icc_and_the_lettering_text():
    result = export_cover(
        art("dark", 256), "Night", "Ana", settings=ExportSettings(size=1000, format="png")
    )
    image = opened(result)
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (1000, 1000)
    assert image.info["icc_profile"] == srgb_profile()
    assert image.info["Title"] == "Night" and image.info["Author"] == "Ana"
    assert result.suffix == ".png" and result.quality is None


def test_quality_steps_down_to_fit_the_limit():
    full = export_cover(art("photo", 512), settings=ExportSettings(size=1500))
    assert full.quality == 95
    limit = int(len(full.data) * 0.7)
    result = export_cover(art("photo", 512), settings=ExportSettings(size=1500, max_bytes=limit))
    assert len(result.data) <= limit and result.quality < 95
    with pytest.raises(ExportError, match="over the 0.1 MB limit"):
        export_cover(art("busy", 512), settings=ExportSettings(size=1500, max_bytes=100_000))
    with pytest.raises(ExportError, match="PNG is .* MB, over the 1 MB limit"):
        export_cover(art("busy", 512), settings=ExportSettings(format="png", max_bytes=1_000_000))


def test_alpha_cmyk_gray_and_exif_orientation_are_normalised():
    rgba = Image.new("RGBA", (256, 256), (255, 0, 0, 0))
    assert opened(export_cover(rgba, settings=ExportSettings(size=640))).mode == "RGB"
    assert to_srgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    cmyk = Image.new("CMYK", (256, 256), (0, 255, 255, 0))
    assert opened(export_cover(cmyk, settings=ExportSettings(size=640))).mode == "RGB"
    gray = Image.new("L", (256, 256), 128)
    assert opened(export_cover(gray, settings=ExportSettings(size=640))).mode == "RGB"
    # a phone photo: pixels stored sideways, EXIF orientation 6 (turn 90 degrees clockwise)
    stored = Image.new("RGB", (256, 256), "black")
    stored.paste((255, 0, 0), (0, 0, 64, 64))  # red top-left as stored
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(buffer, "JPEG", exif=exif, quality=100)
    shot = Image.open(io.BytesIO(buffer.getvalue()))
    image = opened(export_cover(shot, settings=ExportSettings(size=640)))
    assert 0x0112 not in image.getexif()
    r, g, b = image.getpixel((600, 40))  # shown: red top-right
    assert r > 200 and g < 60


def test_an_srgb_profile_keeps_the_numbers():
    image = art("photo", 256)
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert to_srgb(image).tobytes() == image.tobytes()  # already sRGB: numbers kept


@pytest.mark.parametrize(
    "image, message",
    [
        (Image.new("RGB", (800, 600)), "800x600 pixels; it must be square"),
        (Image.new("RGB", (32, 32)), "32x32 pixels; at least 64"),
        ("cover.png", "cover must be an image, got str"),
    ],
)
def test_bad_sources(image, message):
    with pytest.raises(ExportError, match=message):
        export_cover(image)


@pytest.mark.parametrize(
    "settings, message",
    [
        (ExportSettings(size=100), r"size must be a whole number in \[640, 6000\]; got 100"),
        (ExportSettings(size=3000.0), "size must be a whole number"),
        (ExportSettings(format="gif"), "format must be one of jpeg, png; got 'gif'"),
        (ExportSettings(max_bytes=10), "max_bytes must be a whole number"),
    ],
)
def test_bad_settings(settings, message):
    with pytest.raises(ExportError, match=message):
        export_cover(art("dark", 256), settings=settings)


def test_bad_lettering_fails_before_upscaling():
    with pytest.raises(ValueError, match="title is 10,000 characters"):
        export_cover(art("dark", 256), "t" * 10_000, "Ana")


def save_tiny_upscaler(path):
    """A StableDiffusionUpscalePipeline with random tiny weights, saved like a Hub checkpoint."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.tiny_models import tiny_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=7,  # 4 latent + 3 low-res image channels
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        num_class_embeds=1000,  # the noise level is a class label
    )
    vae = AutoencoderKL(  # three blocks: a x4 decoder, as in the real upscaler
        block_out_channels=(32, 32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        scaling_factor=0.08333,
    )
    tokenizer = tiny_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
        )
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(path)
    return path


@pytest.mark.usefixtures("one_torch_thread")
def test_diffusion_upscaler_through_from_pretrained(tmp_path):
    folder = save_tiny_upscaler(tmp_path / "tiny_x4")
    upscaler = DiffusionUpscaler.from_pretrained(str(folder), device="cpu", steps=2, max_input=64)
    result = export_cover(
        art("photo", 128), "Night", "Ana", settings=ExportSettings(size=640), upscaler=upscaler
    )
    assert result.upscaler == f"diffusion x4 ({folder})"
    image = opened(result)
    assert image.size == (640, 640) and image.mode == "RGB"
    # the x4 model really ran: 64 px in, 256 px out, unlike a plain Lanczos enlargement
    big = upscaler.pipe(prompt="", image=art("photo", 64), num_inference_steps=2).images[0]
    assert big.size == (256, 256)
    lanczos = export_cover(art("photo", 128), "Night", "Ana", settings=ExportSettings(size=640))
    assert not np.array_equal(np.asarray(opened(lanczos)), np.asarray(image))


def test_missing_upscaler_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="cannot load the upscaler"):
        DiffusionUpscaler.from_pretrained(str(tmp_path / "nowhere"), device="cpu")
