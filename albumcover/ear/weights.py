"""Find the official Musicnn weights, convert them once, and cache them as safetensors.

Where the TF checkpoints come from, in order:

1. ``weights_dir``: a folder laid out like the musicnn package (``MTT_musicnn/.index`` ...).
2. The installed ``musicnn`` package (``pip install --no-deps musicnn==0.1.0``), located without
   importing it: importing it would import TensorFlow.
3. The official ``musicnn-0.1.0`` wheel, downloaded from a package index's simple API and checked
   against a SHA-256 pinned here (a Hugging Face Space cannot pip-install musicnn: it pins
   numpy<1.17).  The wheel is kept in the cache folder.

Official weights, once converted, are cached as ``<cache_dir>/<model>.safetensors``: loading that
takes a few milliseconds instead of parsing and checksumming the checkpoint.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import platformdirs
import torch

from ..files import atomic_open, atomic_path
from .musicnn import ARCHITECTURES, build_model, convert_tf_weights
from .tfbundle import CheckpointError, read_bundle, read_checkpoint

log = logging.getLogger(__name__)

WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
PROJECT = "musicnn"
DEFAULT_INDEX_URL = "https://pypi.org/simple/"
DEFAULT_TIMEOUT = 60.0  # seconds per network operation
# Bump when the converted layout changes, so stale caches are rebuilt rather than misread.
CACHE_FORMAT = "1"
_OFFICIAL_SOURCE = "musicnn==0.1.0"
_INSTALL_HINT = (
    "install the weights with `pip install --no-deps musicnn==0.1.0`, pass weights_dir= a "
    "folder holding the musicnn model folders, or index_url= a reachable package index"
)


class WeightsDownloadError(RuntimeError):
    """The official wheel could not be fetched or failed its hash check."""


def default_cache_dir() -> Path:
    """The per-user cache folder for converted weights and the downloaded wheel."""

    return platformdirs.user_cache_path("albumcover") / "musicnn"


def installed_weights_dir() -> Path | None:
    """The installed musicnn package's folder if it holds checkpoints, else None.

    ``find_spec`` on a top-level name only locates the package; it runs none of its code.
    """
    try:
        spec = importlib.util.find_spec(PROJECT)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location)
        if any((folder / name / ".index").is_file() for name in ARCHITECTURES):
            return folder
    return None


# --- the wheel ------------------------------------------------------------------------------------


class _Links(HTMLParser):
    # PEP 503 project page: one <a href="URL#sha256=...">filename</a> per file.
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _open(url: str, timeout: float, accept: str = "*/*"):
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "albumcover"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:
        raise WeightsDownloadError(f"cannot fetch {url}: {e}; {_INSTALL_HINT}") from e


def find_wheel_url(index_url: str = DEFAULT_INDEX_URL, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The download URL of the official musicnn wheel on a PEP 503/691 simple index."""
    page = urllib.parse.urljoin(index_url.rstrip("/") + "/", f"{PROJECT}/")
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.2"
    with _open(page, timeout, accept) as response:
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise WeightsDownloadError(f"cannot read {page}: {e}; {_INSTALL_HINT}") from e
        content_type = response.headers.get_content_type()
        final_url = response.geturl()
    links: list[tuple[str, str]] = []
    if content_type == "application/vnd.pypi.simple.v1+json":
        try:
            files = json.loads(body)["files"]
            links = [(f["url"], f["filename"]) for f in files]
        except (ValueError, KeyError, TypeError) as e:
            raise WeightsDownloadError(f"{page}: malformed PEP 691 JSON ({e})") from e
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        links = parser.links
    for href, name in links:
        href_name = urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1]
        if WHEEL_NAME in (name, href_name):
            return urllib.parse.urldefrag(urllib.parse.urljoin(final_url, href)).url
    raise WeightsDownloadError(f"{page} does not list {WHEEL_NAME}; {_INSTALL_HINT}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(
    cache_dir: str | Path | None = None,
    index_url: str = DEFAULT_INDEX_URL,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Path of the official wheel in ``cache_dir``, downloading and hash-checking it if needed.

    Raises :class:`WeightsDownloadError` when the index is unreachable, does not list the wheel,
    or serves a file whose SHA-256 is not the pinned one (nothing is kept then).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wheel = cache_dir / WHEEL_NAME
    if wheel.is_file():
        if _sha256(wheel) == WHEEL_SHA256:
            return wheel
        log.warning("%s: hash mismatch, downloading it again", wheel)
    url = find_wheel_url(index_url, timeout)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading the Musicnn weights (%s) from %s", WHEEL_NAME, url)
    digest = hashlib.sha256()
    # lands under its name only once complete and hash-checked; any error removes the temp file
    with atomic_open(wheel) as out, _open(url, timeout) as response:
        try:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        except (OSError, http.client.HTTPException) as e:
            raise WeightsDownloadError(f"download of {url} failed: {e}; {_INSTALL_HINT}") from e
        if digest.hexdigest() != WHEEL_SHA256:
            raise WeightsDownloadError(
                f"{url}: SHA-256 {digest.hexdigest()} is not the pinned {WHEEL_SHA256} of the "
                f"official {WHEEL_NAME}; refusing to use it. Check the index ({index_url}) or "
                + _INSTALL_HINT
            )
    return wheel


def read_wheel_checkpoint(wheel: str | Path, model: str) -> dict[str, np.ndarray]:
    """The TF variables of ``model`` read straight from the musicnn wheel (a zip)."""
    wheel = Path(wheel)
    members = [f"{PROJECT}/{model}/.index", f"{PROJECT}/{model}/.data-00000-of-00001"]
    try:
        with zipfile.ZipFile(wheel) as archive:
            index, data = (archive.read(name) for name in members)
    except KeyError as e:
        raise CheckpointError(f"{wheel}: no {model} checkpoint in the wheel ({e})") from e
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{wheel}: not a readable wheel ({e})") from e
    return read_bundle(
        index, data, index_name=f"{wheel}:{members[0]}", data_name=f"{wheel}:{members[1]}"
    )


# --- converted weights ---------------------------------------------------------------------------


def _check_model_name(model: str) -> None:
    if model not in ARCHITECTURES:
        raise ValueError(f"unknown musicnn model {model!r}; choose one of {sorted(ARCHITECTURES)}")


def read_tf_variables(
    model: str,
    *,
    weights_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    index_url: str = DEFAULT_INDEX_URL,
    use_installed: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, np.ndarray]:
    """The raw TF checkpoint variables of ``model`` from the first source that has them."""
    _check_model_name(model)
    if weights_dir is not None:
        folder = Path(weights_dir) / model
        if not (folder / ".index").is_file():
            raise CheckpointError(
                f"{folder / '.index'} not found: weights_dir must hold the musicnn model "
                f"folders ({', '.join(ARCHITECTURES)})"
            )
        return read_checkpoint(folder)
    installed = installed_weights_dir() if use_installed else None
    if installed is not None:
        log.debug("reading %s from the installed musicnn package at %s", model, installed)
        return read_checkpoint(installed / model)
    return read_wheel_checkpoint(fetch_wheel(cache_dir, index_url, timeout), model)


def _read_cache(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != CACHE_FORMAT or metadata.get("source") != _OFFICIAL_SOURCE:
                log.info("%s: written by another version, rebuilding it", path)
                return None
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        log.warning("%s: unreadable cache (%s), rebuilding it", path, e)
        return None
    if state.keys() != expected.keys() or any(
        state[k].shape != expected[k].shape or state[k].dtype != expected[k].dtype for k in state
    ):
        log.warning("%s: cached tensors do not fit the model, rebuilding it", path)
        return None
    return state


def _write_cache(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    try:
        with atomic_path(path) as tmp:  # a reader sees the old file or the whole new one
            save_file(state, tmp, metadata={"format": CACHE_FORMAT, "source": _OFFICIAL_SOURCE})
    except OSError as e:  # a read-only cache costs start-up time, nothing else
        log.warning("cannot cache converted weights at %s: %s", path, e)


def load_model(
    model: str,
    *,
    weights_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    index_url: str = DEFAULT_INDEX_URL,
    use_installed: bool = True,
    use_cache: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> torch.nn.Module:
    """The pretrained network ``model`` (one of ``musicnn.ARCHITECTURES``), fp32, eval mode, CPU.

    Official weights go through the safetensors cache in ``cache_dir`` (default
    :func:`default_cache_dir`) unless ``use_cache`` is False; weights from an explicit
    ``weights_dir`` are converted every time (they may be anyone's).
    """
    _check_model_name(model)
    network = build_model(model)
    expected = network.state_dict()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache_dir / f"{model}.safetensors"
    cacheable = use_cache and weights_dir is None
    state = _read_cache(cache, expected) if cacheable and cache.is_file() else None
    if state is None:
        tf_vars = read_tf_variables(
            model,
            weights_dir=weights_dir,
            cache_dir=cache_dir,
            index_url=index_url,
            use_installed=use_installed,
            timeout=timeout,
        )
        state = convert_tf_weights(network, tf_vars)
        if cacheable:
            _write_cache(cache, state)
    network.load_state_dict(state, strict=True)
    return network.eval()
