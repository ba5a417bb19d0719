"""The distributor check: everything an aggregator (DistroKid, CD Baby, Apple Music, Spotify)
would refuse in a cover file, as a report of failures and warnings.

Rules: square; at least 640 px (fail) and 3000 px (warn); RGB, 8 bits, no alpha (CMYK and
grayscale are refused); sRGB (another ICC profile fails, none at all warns); JPEG or PNG; under
the size limit; and lettering with no URL, @handle, e-mail address, price, or the words
"exclusive" / "limited edition". The lettering is read from the file's own metadata (what
:mod:`albumcover.release.export` writes), or given as ``text``.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageCms, UnidentifiedImageError

from ..images import MAX_PIXELS, ImageError, check_budget, check_png_complete, over_budget
from .export import DEFAULT_MAX_BYTES
from .text import skeleton

MIN_PX = 640
RECOMMENDED_PX = 3000

_TLDS = (
    "com|net|org|io|co|fm|me|app|info|biz|music|band|shop|store|xyz|tv|ly|gg|link|site|online|"
    "de|uk|fr|es|it|nl|ru|jp|br|us|ca|au"
)
TEXT_RULES: tuple[tuple[str, str, re.Pattern], ...] = (
    ("email", "an e-mail address", re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", re.I)),
    (
        "url",
        "a URL",
        re.compile(rf"(\b[a-z][a-z0-9+.-]*://|\bwww\.|\b[\w-]+\.({_TLDS})\b(/\S*)?)", re.I),
    ),
    ("handle", "an @handle", re.compile(r"(?<![\w.])@\w{2,}")),
    (
        "price",
        "a price",
        re.compile(
            r"([$€£¥₹]\s?\d|\d([.,]\d+)?\s?([$€£¥₹]|\b(usd|eur|gbp|dollars?|euros?)\b))",
            re.I,
        ),
    ),
    ("exclusive", 'the word "exclusive"', re.compile(r"\bexclusive(ly)?\b", re.I)),
    ("limited", 'the words "limited edition"', re.compile(r"\blimited\s+edition\b", re.I)),
)


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` "fail" (a distributor refuses it) or "warn"; ``rule`` a short id."""

    level: str
    rule: str
    message: str


@dataclass(frozen=True)
class CheckReport:
    """The check of one cover: ``findings`` in rule order; ``passed`` when none is a failure."""

    name: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    bytes: int = 0

    @property
    def passed(self) -> bool:
        return not any(f.level == "fail" for f in self.findings)

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "fail"]

    def summary(self) -> str:
        """Human-readable lines: a verdict, then one line per finding."""
        head = f"{self.name}: {'PASS' if self.passed else 'FAIL'}"
        if self.width:
            head += f" ({self.format} {self.width}x{self.height} {self.mode}, "
            head += f"{self.bytes / 1e6:.2f} MB)"
        return "\n".join([head, *(f"  {f.level}: {f.message}" for f in self.findings)])

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "passed": self.passed,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "format": self.format,
            "bytes": self.bytes,
            "findings": [vars(f) for f in self.findings],
        }


def check_text(text: str) -> list[Finding]:
    """Lettering findings: each rule of :data:`TEXT_RULES` that ``text`` breaks, judged on what
    it looks like (:func:`albumcover.release.text.skeleton`: no invisible characters, fullwidth
    forms folded), so a zero-width space inside a URL hides nothing."""
    findings = []
    seen = skeleton(text or "")
    for rule, what, pattern in TEXT_RULES:
        match = pattern.search(seen)
        if match:
            findings.append(
                Finding("fail", rule, f"the lettering contains {what}: {match.group(0)!r}")
            )
    return findings


def stored_lettering(image: Image.Image) -> str:
    """The title and artist an export wrote into the file (JPEG comment, PNG text), or ""."""
    info = image.info
    parts = []
    comment = info.get("comment")
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", "replace")
    if comment:
        parts.append(comment)
    for key in ("Title", "Author", "Artist"):
        if info.get(key):
            parts.append(str(info[key]))
    return "\n".join(parts)


def _colour_findings(image: Image.Image) -> list[Finding]:
    mode = image.mode
    out = []
    if mode == "CMYK":
        out.append(Finding("fail", "cmyk", "the image is CMYK; distributors want RGB"))
    elif mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        out.append(Finding("fail", "grayscale", f"the image is grayscale ({mode}); use RGB"))
    elif mode == "P":
        out.append(Finding("fail", "palette", "the image is palette-based (P); use 8-bit RGB"))
    elif mode not in ("RGB", "RGBA"):
        out.append(Finding("fail", "mode", f"the image mode is {mode}; use 8-bit RGB"))
    if mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        out.append(Finding("fail", "alpha", "the image has an alpha channel (transparency)"))
    icc = image.info.get("icc_profile")
    if not icc:
        out.append(Finding("warn", "icc", "no ICC colour profile: it will be read as sRGB"))
    else:
        try:
            name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
        except (OSError, ImageCms.PyCMSError):
            name = ""
        if "srgb" not in (name or "").lower():
            what = (name or "unreadable").strip()
            out.append(Finding("fail", "srgb", f"the colour profile is {what!r}, not sRGB"))
    return out


def check_cover(
    cover: str | os.PathLike | bytes,
    *,
    text: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> CheckReport:
    """Check a cover file (path or its bytes). ``text``: the lettering, when known (else what
    the file's metadata says). ``max_pixels``: a file whose header declares more is a failure,
    never decoded (see :mod:`albumcover.images`). Never raises for a bad file: unreadable is a
    failure."""
    if isinstance(cover, bytes):
        data, name = cover, name or "cover"
    else:
        path = Path(cover)
        name = name or str(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            why = e.strerror or str(e)
            return CheckReport(name, (Finding("fail", "unreadable", f"cannot read it: {why}"),))
    try:
        image = Image.open(io.BytesIO(data))
        check_budget(image.size, max_pixels, "the image")  # from the header, before decoding
        image.load()
        if image.format == "PNG":  # PIL decodes a PNG cut short without a word
            check_png_complete(data, "the image")
    except ImageError as e:
        rule = "too-large" if "budget" in str(e) else "unreadable"
        reason = Finding("fail", rule, str(e))
        return CheckReport(name, (reason,), *image.size, image.mode, image.format, len(data))
    except Image.DecompressionBombError as e:  # raised by Image.open itself
        reason = Finding("fail", "too-large", str(over_budget(e, max_pixels, "the image")))
        return CheckReport(name, (reason,), bytes=len(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        reason = Finding("fail", "unreadable", f"not a readable image: {e}")
        return CheckReport(name, (reason,), bytes=len(data))
    findings: list[Finding] = []
    fmt = image.format or ""
    if fmt not in ("JPEG", "PNG"):
        findings.append(Finding("fail", "format", f"the file is {fmt or 'unknown'}; use JPEG/PNG"))
    width, height = image.size
    if width != height:
        findings.append(Finding("fail", "square", f"the image is {width}x{height}, not square"))
    if min(width, height) < MIN_PX:
        findings.append(
            Finding("fail", "too-small", f"{min(width, height)} px is under the {MIN_PX} px floor")
        )
    elif min(width, height) < RECOMMENDED_PX:
        findings.append(
            Finding(
                "warn",
                "small",
                f"{min(width, height)} px is under the recommended {RECOMMENDED_PX} px",
            )
        )
    findings += _colour_findings(image)
    if len(data) > max_bytes:
        findings.append(
            Finding(
                "fail",
                "file-size",
                f"the file is {len(data) / 1e6:.2f} MB, over the {max_bytes / 1e6:g} MB limit",
            )
        )
    exif = image.getexif()
    if exif.get(0x0112, 1) != 1:
        findings.append(
            Finding("warn", "orientation", "EXIF orientation is set; some stores ignore it")
        )
    lettering = stored_lettering(image) if text is None else text
    findings += check_text(lettering)
    return CheckReport(name, tuple(findings), width, height, image.mode, fmt, len(data))
