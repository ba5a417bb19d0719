"""The distributor check, rule by rule, on real files; and ``python -m albumcover check``."""

import json
import subprocess
import sys

import pytest
from PIL import Image, ImageCms

from albumcover.cli.main import main
from albumcover.release.check import check_cover, check_text
from albumcover.release.export import ExportSettings, export_cover, srgb_profile
from tests.conftest import ROOT
from tests.covers_art import art


def save(image, path, **kw):
    image.save(path, **kw)
    return path


def rules(report, level="fail"):
    return {f.rule for f in report.findings if f.level == level}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "cover.jpg"
    export_cover(art("photo", 512), "Night Drive", "Ana").save(path)
    return path


def test_an_export_passes(good):
    report = check_cover(good)
    assert report.passed and report.findings == ()
    assert (report.width, report.height, report.mode, report.format) == (3000, 3000, "RGB", "JPEG")


@pytest.mark.parametrize(
    "make, rule, level",
    [
        (lambda: Image.new("RGB", (3000, 2000)), "square", "fail"),
        (lambda: Image.new("RGB", (600, 600)), "too-small", "fail"),
        (lambda: Image.new("RGB", (1400, 1400)), "small", "warn"),
        (lambda: Image.new("CMYK", (3000, 3000)), "cmyk", "fail"),
        (lambda: Image.new("L", (3000, 3000)), "grayscale", "fail"),
        (lambda: Image.new("RGBA", (3000, 3000)), "alpha", "fail"),
        (lambda: Image.new("P", (3000, 3000)), "palette", "fail"),
        (lambda: Image.new("RGB", (3000, 3000)), "icc", "warn"),
    ],
)
def test_each_image_rule(tmp_path, make, rule, level):
    image = make()
    fmt = "JPEG" if image.mode in ("CMYK", "L") else "PNG"
    icc = srgb_profile() if rule != "icc" and image.mode == "RGB" else None
    path = save(image, tmp_path / f"c.{fmt.lower()}", format=fmt, icc_profile=icc)
    report = check_cover(path)
    assert rule in rules(report, level), report.summary()
    assert report.passed == (level == "warn")


def test_non_srgb_profile_fails(tmp_path):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    path = save(Image.new("RGB", (3000, 3000)), tmp_path / "c.png", icc_profile=lab)
    report = check_cover(path)
    assert "srgb" in rules(report) and not report.passed


def test_format_size_limit_and_unreadable(tmp_path, good):
    bmp = save(Image.new("RGB", (3000, 3000)), tmp_path / "c.bmp")
    assert "format" in rules(check_cover(bmp))
    assert "file-size" in rules(check_cover(good, max_bytes=100_000))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:2000])
    assert "unreadable" in rules(check_cover(broken))
    words = tmp_path / "words.png"
    words.write_text("not a picture")
    report = check_cover(words)
    assert "unreadable" in rules(report) and "not a readable image" in report.summary()
    assert "cannot read it" in check_cover(tmp_path / "missing.png").summary()


@pytest.mark.parametrize(
    "text, rule",
    [
        ("Stream it on https://ana.example", "url"),
        ("www.anamusic", "url"),
        ("ana-music.com", "url"),
        ("anaband.bandcamp.com/album", "url"),
        ("follow @ana_music", "handle"),
        ("ana@example.org", "email"),
        ("only $9.99", "price"),
        ("9,99 €", "price"),
        ("5 USD", "price"),
        ("Exclusive Remix", "exclusive"),
        ("LIMITED  EDITION", "limited"),
    ],
)
def test_each_text_rule(text, rule):
    assert rule in {f.rule for f in check_text(text)}


@pytest.mark.parametrize(
    "text", ["Mr. Brightside", "Free Bird", "AC/DC", "Limited", "Vol. 2", "Title: 99 Luftballons"]
)
def test_ordinary_titles_pass(text):
    assert check_text(text) == []


def test_lettering_is_read_from_the_file(tmp_path):
    bad = export_cover(art("dark", 256), "Out now at www.ana.fm", "@ana", settings=ExportSettings())
    path = bad.save(tmp_path / "bad.jpg")
    assert {"url", "handle"} <= rules(check_cover(path))
    png = export_cover(
        art("dark", 256), "Limited Edition", "Ana", settings=ExportSettings(format="png")
    )
    assert "limited" in rules(check_cover(png.data))


def test_cli_exit_codes(good, tmp_path, capsys):
    assert main(["check", str(good)]) == 0
    assert "PASS" in capsys.readouterr().out
    small = save(Image.new("RGB", (500, 500)), tmp_path / "small.png")
    assert main(["check", str(good), str(small)]) == 1
    out = capsys.readouterr().out
    assert "small.png: FAIL" in out and "500 px is under the 640 px floor" in out
    assert main(["check", str(good), "--text", "limited edition"]) == 1
    assert main(["check", str(good), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["passed"] and record["width"] == 3000


def test_cli_as_a_process(good, tmp_path):
    missing = tmp_path / "nope.jpg"
    run = subprocess.run(
        [sys.executable, "-m", "albumcover", "check", str(good), str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "nope.jpg: FAIL" in run.stdout and "Traceback" not in run.stderr
    with pytest.raises(SystemExit) as info:
        main(["check", str(good), "--max-mb", "nan"])
    assert info.value.code == 2
