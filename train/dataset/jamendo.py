"""Collect Creative Commons tracks and their album covers from Jamendo, for the dataset builder
(``python -m train.jamendo`` is its command).

Lists tracks with the API v3.0 ``/tracks/`` method (paged with offset/limit), downloads each one
whose artist allows downloads, and its album image, as ``DIR/<artist>/<album>/<id> <name>.mp3``
beside ``cover.jpg`` (a single gets a folder of its own), and keeps ``DIR/manifest.jsonl`` with
title, artist, album, date, category and the track's license URL. Re-running resumes: files
already there are not fetched again, and every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from albumcover.files import atomic_open, write_atomic
from albumcover.songfile.tags import match_category

logger = logging.getLogger(__name__)

API_URL = "https://api.jamendo.com/v3.0"
MAX_PAGE_SIZE = 200  # the API's own cap on ``limit``
MANIFEST = "manifest.jsonl"
USER_AGENT = "albumcover-dataset/0.1 (python urllib)"
IMAGE_SIZE = 600  # the largest album image the API serves; the builder resizes it


class JamendoError(RuntimeError):
    """The API refused the request or answered something that is not its documented format."""


class DownloadError(RuntimeError):
    """A file could not be fetched; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Http:
    """A polite HTTP getter: a timeout, and retries with exponential backoff on transient errors.

    Client errors (4xx but 429) are final and raise at once.
    """

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    secret: str = ""  # scrubbed from every error message (the client id is in API URLs)

    def get(self, url: str) -> bytes:
        """The body of ``url``; raises DownloadError after the last try."""
        return self._with_retries(url, lambda response: response.read())

    def download(self, url: str, target: Path) -> None:
        """Stream ``url`` into ``target`` atomically (temp file in the same folder + rename)."""

        def save(response):
            with atomic_open(target) as f:  # an error or a kill leaves no partial file
                size = 0
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    size += len(chunk)
                if size == 0:
                    raise DownloadError(f"empty response from {self._redact(url)}")

        self._with_retries(url, save)

    def _with_retries(self, url: str, handle):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return handle(response)
            except urllib.error.HTTPError as e:
                error = DownloadError(f"HTTP {e.code} {e.reason} from {self._redact(url)}", e.code)
                if e.code != 429 and e.code < 500:
                    raise error from e
                retry_after = (e.headers or {}).get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                error = DownloadError(f"cannot fetch {self._redact(url)}: {reason}")
            if attempt == self.retries:
                raise error
            logger.info("%s; retrying in %.1f s", error, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text


@dataclass
class CollectSummary:
    """What a run listed, fetched and left out."""

    output_dir: Path
    listed: int = 0
    downloaded: int = 0
    present: int = 0  # already downloaded by an earlier run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (track, reason)

    def format(self) -> str:
        lines = [
            f"Jamendo: {self.listed} tracks listed, {self.downloaded} downloaded, "
            f"{self.present} already in {self.output_dir}."
        ]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            lines += [f"  {track}: {reason}" for track, reason in self.skipped]
        return "\n".join(lines)


def list_tracks(
    client_id: str,
    *,
    api_url: str = API_URL,
    tags: str | None = None,
    order: str = "popularity_total",
    page_size: int = 50,
    http: Http | None = None,
) -> Iterator[dict]:
    """Every track the ``/tracks/`` method lists for a query, page after page.

    Yields the documented result objects (id, name, artist_name, album_name, releasedate, audio,
    audiodownload, audiodownload_allowed, album_image, image, license_ccurl, musicinfo, ...).

    Raises:
        JamendoError: ``headers.status`` is "failed", or the answer is not the documented JSON.
    """
    http = http or Http(secret=client_id)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    offset = 0
    while True:
        params = {
            "client_id": client_id,
            "format": "json",
            "limit": page_size,
            "offset": offset,
            "include": "musicinfo",
            "audioformat": "mp32",
            "audiodlformat": "mp32",
            "imagesize": IMAGE_SIZE,
            "order": order,
        }
        if tags:
            params["tags"] = tags
        url = f"{api_url.rstrip('/')}/tracks/?{urllib.parse.urlencode(params)}"
        try:
            body = http.get(url)
        except DownloadError as e:
            raise JamendoError(f"Jamendo API request failed: {e}") from e
        results = _parse_page(body, http._redact(url))
        yield from results
        if len(results) < page_size:
            return
        offset += len(results)


def collect(
    client_id: str,
    output_dir: str | Path,
    *,
    limit: int = 50,
    tags: str | None = None,
    api_url: str = API_URL,
    order: str = "popularity_total",
    http: Http | None = None,
) -> CollectSummary:
    """Download up to ``limit`` tracks of a query with their covers, resuming an earlier run.

    Tracks already in ``output_dir`` count toward ``limit`` and are not fetched again; a track
    whose cover cannot be fetched is left out (a cover is what the dataset is for).
    """
    output_dir = Path(output_dir)
    http = http or Http(secret=client_id)
    summary = CollectSummary(output_dir)
    manifest = output_dir / MANIFEST
    rows = _read_manifest(manifest)
    have = 0
    for track in list_tracks(
        client_id, api_url=api_url, tags=tags, order=order, page_size=min(limit, 50), http=http
    ):
        summary.listed += 1
        name = f"{track.get('id', '?')} {track.get('artist_name', '')} - {track.get('name', '')}"
        try:
            row, fetched = _fetch_track(track, output_dir, http)
        except (DownloadError, JamendoError) as e:
            summary.skipped.append((name, str(e)))
            continue
        have += 1
        summary.downloaded += fetched
        summary.present += not fetched
        if rows.get(row["jamendo_id"]) != row:
            rows[row["jamendo_id"]] = row
            _write_manifest(manifest, rows)  # after every track: an interrupted run loses none
        if have >= limit:
            break  # before the generator asks for another page
    return summary


def _parse_page(body: bytes, url: str) -> list[dict]:
    try:
        page = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise JamendoError(f"Jamendo answered something that is not JSON from {url}: {e}") from e
    headers = page.get("headers") if isinstance(page, dict) else None
    if not isinstance(headers, dict):
        raise JamendoError(f"Jamendo answer has no 'headers' object ({url})")
    # Live answers say "success"; the docs' prose says "succeed". "failed" carries an error.
    if headers.get("status") not in ("success", "succeed"):
        message = headers.get("error_message") or "no error message"
        raise JamendoError(
            f"Jamendo API error (status {headers.get('status')!r}, code {headers.get('code')}): "
            f"{message}"
        )
    if headers.get("warnings"):  # e.g. usage limits exceeded: a success with no results
        logger.warning("Jamendo: %s", headers["warnings"])
    results = page.get("results")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise JamendoError(f"Jamendo answer has no 'results' list ({url})")
    return results


def _fetch_track(track: dict, output_dir: Path, http: Http) -> tuple[dict, bool]:
    """Download one track and its cover unless already there; returns (manifest row, fetched)."""
    track_id = str(track.get("id") or "").strip()
    if not track_id.isdigit():
        raise JamendoError(f"result without a numeric id: {track.get('id')!r}")
    if not track.get("audiodownload_allowed"):
        raise JamendoError("the artist does not allow downloads")
    audio_url = track.get("audiodownload") or ""
    image_url = track.get("album_image") or track.get("image") or ""
    if not audio_url.startswith(("http://", "https://")):
        raise JamendoError(f"no download URL ({audio_url!r})")
    if not image_url.startswith(("http://", "https://")):
        raise JamendoError("no album image")

    artist = _safe_name(track.get("artist_name"), "unknown artist")
    title = _safe_name(track.get("name"), "untitled")
    if track.get("album_name"):
        folder = output_dir / artist / _safe_name(track["album_name"], "untitled album")
    else:  # a single: its own folder, so its cover.jpg is its own
        folder = output_dir / artist / f"{track_id} {title}"
    audio = folder / f"{track_id} {title}.mp3"
    cover = folder / "cover.jpg"

    fetched = False
    if not cover.exists():  # the cover first: a track without one is no use to the dataset
        try:
            http.download(image_url, cover)
        except DownloadError as e:
            what = "not found (HTTP 404)" if e.status == 404 else str(e)
            raise DownloadError(f"album image {what}", e.status) from e
        fetched = True
    if not audio.exists():
        http.download(audio_url, audio)
        fetched = True

    genres = ((track.get("musicinfo") or {}).get("tags") or {}).get("genres") or []
    category = next((c for c in map(match_category, genres) if c), "")
    row = {
        "audio": audio.relative_to(output_dir).as_posix(),
        "image": cover.relative_to(output_dir).as_posix(),
        "title": str(track.get("name") or ""),
        "artist": str(track.get("artist_name") or ""),
        "album": str(track.get("album_name") or ""),
        "date": str(track.get("releasedate") or ""),
        "category": category,
        "license": str(track.get("license_ccurl") or ""),
        "genres": [str(g) for g in genres],
        "jamendo_id": track_id,
    }
    return row, fetched


def _safe_name(text, fallback: str) -> str:
    """A file name from free text: no path separators or reserved characters, <= 80 chars."""
    text = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', " ", str(text or ""))
    text = " ".join(text.split()).strip(" .")[:80].strip(" .")
    return text or fallback


def _read_manifest(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    rows = {}
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(raw)
            rows[str(row["jamendo_id"])] = row
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise JamendoError(
                f"{path} line {line} is not a row this collector wrote ({e}); "
                "move the file away to start a new manifest"
            ) from e
    return rows


def _write_manifest(path: Path, rows: dict[str, dict]) -> None:
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows.values())
    write_atomic(path, text)
