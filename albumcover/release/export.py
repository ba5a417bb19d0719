"""Distributor-ready cover files: square 8-bit sRGB RGB, no alpha, no EXIF, under a size limit.

``export_cover(image, title, artist)`` upscales the painting to the export size (a diffusers x4
upscaler when one is given, else Lanczos and a light unsharp mask), sets the lettering at that
size (so it is crisp), and encodes a JPEG (quality stepped down to stay under the limit) or a
PNG with the sRGB ICC profile embedded. The lettered text travels in the file (JPEG comment,
PNG text chunks) so :mod:`albumcover.release.check` can vet it later without OCR.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter, PngImagePlugin

from ..files import write_atomic
from ..images import srgb_profile, to_srgb
from .lettering import LetteredCover, letter_cover
from .text import clean_text

log = logging.getLogger(__name__)

DEFAULT_SIZE = 3000  # pixels; Apple Music, DistroKid and most aggregators recommend 3000 x 3000
MIN_EXPORT_SIZE, MAX_EXPORT_SIZE = 640, 6000  # 640: Spotify's floor; 6000: Apple's ceiling
FORMATS = ("jpeg", "png")
DEFAULT_MAX_BYTES = 10_000_000
MIN_SOURCE = 64  # pixels: anything smaller is a thumbnail, not a painting
DEFAULT_UPSCALER_MODEL = "stabilityai/stable-diffusion-x4-upscaler"
SUFFIXES = {"jpeg": ".jpg", "png": ".png"}


class ExportError(ValueError):
    """A cover that cannot be exported as asked (names the setting or the image's problem)."""


@dataclass(frozen=True)
class ExportSettings:
    """size: pixels per side; format: "jpeg" or "png"; max_bytes: the file size limit; JPEG
    quality starts at ``quality`` and steps down by 5 to ``min_quality`` to fit under it."""

    size: int = DEFAULT_SIZE
    format: str = "jpeg"
    max_bytes: int = DEFAULT_MAX_BYTES
    quality: int = 95
    min_quality: int = 60

    def validate(self) -> ExportSettings:
        def whole(name, value, lo, hi):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ExportError(f"{name} must be a whole number in [{lo}, {hi}]; got {value!r}")

        whole("size", self.size, MIN_EXPORT_SIZE, MAX_EXPORT_SIZE)
        if self.format not in FORMATS:
            raise ExportError(f"format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        whole("max_bytes", self.max_bytes, 100_000, 1_000_000_000)
        whole("quality", self.quality, 1, 100)
        whole("min_quality", self.min_quality, 1, self.quality)
        return self


@dataclass(frozen=True)
class Export:
    """An encoded cover: ``data`` (the file's bytes), its format and pixel size, the JPEG
    quality used (None for PNG), the upscaler's name, and what the lettering did."""

    data: bytes
    format: str
    size: int
    quality: int | None
    upscaler: str
    lettering: LetteredCover | None

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.format]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the file atomically (a rerun with the same bytes leaves it untouched)."""
        write_atomic(path, self.data)
        return Path(path)


class LanczosUpscaler:
    """The CPU upscaler: a light unsharp mask at the painting's own resolution, then Lanczos.

    Sharpening before enlarging costs (1/scale)^2 of doing it after (0.02 s instead of 0.35 s
    of CPU for 512 -> 3000 px) and enlarges the same crisp edge.
    """

    name = "lanczos + unsharp mask (CPU)"

    def __call__(self, image: Image.Image, size: int) -> Image.Image:
        if image.size == (size, size):
            return image.copy()
        if size > max(image.size):
            image = image.filter(ImageFilter.UnsharpMask(radius=1.0, percent=60, threshold=2))
        return image.resize((size, size), Image.Resampling.LANCZOS)


class DiffusionUpscaler:
    """A diffusers ``StableDiffusionUpscalePipeline`` (x4), then Lanczos to the export size.

    Build it with :meth:`from_pretrained` (a Hub id such as
    :data:`DEFAULT_UPSCALER_MODEL`, or a local folder). The painting is brought to at most
    ``max_input`` pixels first: the x4 model works at the input's resolution.
    """

    def __init__(self, pipe, model: str, steps: int = 20, max_input: int = 512, seed: int = 0):
        self.pipe = pipe
        self.model = model
        self.steps = steps
        self.max_input = max_input
        self.seed = seed
        self.name = f"diffusion x4 ({model})"

    @classmethod
    def from_pretrained(cls, model: str = DEFAULT_UPSCALER_MODEL, device: str | None = None, **kw):
        import torch
        from diffusers import StableDiffusionUpscalePipeline

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        try:
            pipe = StableDiffusionUpscalePipeline.from_pretrained(model, dtype=dtype)
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot load the upscaler {model!r}: {e}") from e
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, model, **kw)

    def __call__(self, image: Image.Image, size: int, prompt: str = "") -> Image.Image:
        import torch

        if max(image.size) > self.max_input:
            image = image.resize((self.max_input, self.max_input), Image.Resampling.LANCZOS)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        big = self.pipe(
            prompt=prompt,
            image=image,
            num_inference_steps=self.steps,
            generator=generator,
        ).images[0]
        big = big.convert("RGB")
        if big.size == (size, size):
            return big
        return big.resize((size, size), Image.Resampling.LANCZOS)  # already sharp


def upscale(image: Image.Image, size: int, upscaler=None) -> tuple[Image.Image, str]:
    """``image`` (square RGB) at ``size`` x ``size``, and the name of the upscaler that did it.

    ``upscaler``: a callable ``(image, size) -> image`` with a ``name`` (e.g. a
    :class:`DiffusionUpscaler`), or None for :class:`LanczosUpscaler`. A diffusion upscaler that
    fails falls back to Lanczos (logged), so an export is never lost to a GPU hiccup.
    """
    if upscaler is not None and image.size[0] < size:
        try:
            return upscaler(image, size), upscaler.name
        except RuntimeError as e:  # CUDA out of memory and friends
            log.error("upscaler %s failed, using Lanczos: %s", upscaler.name, e)
    lanczos = LanczosUpscaler()
    return lanczos(image, size), lanczos.name


def check_source(image) -> None:
    """Refuse what cannot become a cover: not a PIL image, not square, or tiny."""
    if not isinstance(image, Image.Image):
        raise ExportError(f"cover must be an image, got {type(image).__name__}")
    width, height = image.size
    if width != height:
        raise ExportError(
            f"the cover is {width}x{height} pixels; it must be square (crop it, or paint it "
            "with equal width and height)"
        )
    if width < MIN_SOURCE:
        raise ExportError(f"the cover is {width}x{height} pixels; at least {MIN_SOURCE} needed")


def lettering_text(title: str, artist: str) -> str:
    """The lettering as stored in an export's metadata (and read back by the check)."""
    return f"Title: {title}\nArtist: {artist}"


def _encode(image: Image.Image, settings: ExportSettings, title: str, artist: str):
    icc = srgb_profile()
    if settings.format == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("Title", title)
        info.add_itxt("Author", artist)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", icc_profile=icc, pnginfo=info, compress_level=6)
        data = buffer.getvalue()
        if len(data) > settings.max_bytes:
            raise ExportError(
                f"the PNG is {len(data) / 1e6:.1f} MB, over the {settings.max_bytes / 1e6:g} MB "
                "limit; export a JPEG, a smaller size, or raise the limit"
            )
        return data, None
    comment = lettering_text(title, artist).encode("utf-8")
    quality = settings.quality
    while True:
        buffer = io.BytesIO()
        # 4:4:4 chroma at high quality: subsampling smears red and blue lettering
        subsampling = 0 if quality >= 90 else 2
        image.save(
            buffer,
            "JPEG",
            quality=quality,
            subsampling=subsampling,
            icc_profile=icc,
            comment=comment,
            optimize=False,
        )
        data = buffer.getvalue()
        if len(data) <= settings.max_bytes:
            return data, quality
        if quality - 5 < settings.min_quality:
            raise ExportError(
                f"the JPEG is {len(data) / 1e6:.1f} MB even at quality {quality}, over the "
                f"{settings.max_bytes / 1e6:g} MB limit; raise the limit or export a smaller size"
            )
        quality -= 5


def export_cover(
    image: Image.Image,
    title: str = "",
    artist: str = "",
    *,
    settings: ExportSettings | None = None,
    upscaler=None,
    layout: str = "auto",
    font: str = "auto",
    color: str = "auto",
    backing: str = "auto",
) -> Export:
    """Export ``image`` (a square painting, at least :data:`MIN_SOURCE` px) as a distributor-ready
    file: upscaled to ``settings.size`` (see :func:`upscale`), lettered at that size with
    ``title``/``artist`` (none when both are empty; options as in
    :func:`albumcover.release.lettering.letter_cover`), encoded under ``settings.max_bytes``."""
    settings = (settings or ExportSettings()).validate()
    check_source(image)
    # the lettering is checked before the slow part, so bad text fails fast
    title, artist = clean_text("title", title), clean_text("artist", artist)
    rgb = to_srgb(image)
    big, upscaler_name = upscale(rgb, settings.size, upscaler)
    lettered = None
    if title or artist:
        lettered = letter_cover(
            big, title, artist, layout=layout, font=font, color=color, backing=backing
        )
        big = lettered.image
        # the metadata says what is drawn (no character a font lacked), so the check judges that
        title, artist = lettered.title, lettered.artist
    data, quality = _encode(big, settings, title, artist)
    log.info(
        "exported %s %dpx, %.2f MB (quality %s, %s)",
        settings.format,
        settings.size,
        len(data) / 1e6,
        quality,
        upscaler_name,
    )
    return Export(data, settings.format, settings.size, quality, upscaler_name, lettered)
