"""train.jamendo against a local stand-in of the Jamendo API v3.0 (its documented JSON format,
two pages) serving real mp3 and image files from 127.0.0.1; then the dataset builder reads what
it downloaded."""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.music_library import cut_clip, image_bytes
from train.dataset.jamendo import MANIFEST, CollectSummary, Http, JamendoError, collect, list_tracks
from train.jamendo import main, parse_args

CLIENT_ID = "test-client-1234"


def track(i, **overrides):
    """One result object as the /tracks/ method documents it (include=musicinfo)."""
    result = {
        "id": str(1000 + i),
        "name": f"Song {i}",
        "duration": 4,
        "artist_id": "77",
        "artist_name": "The Testers",
        "album_name": "First Album" if i < 3 else "",
        "album_id": "500" if i < 3 else "",
        "releasedate": f"2019-0{i + 1}-15",
        "album_image": "{base}/img/album500.jpg" if i < 3 else "",
        "image": f"{{base}}/img/track{1000 + i}.jpg",
        "audio": f"{{base}}/audio/{1000 + i}.mp3?stream",
        "audiodownload": f"{{base}}/audio/{1000 + i}.mp3",
        "audiodownload_allowed": True,
        "license_ccurl": "http://creativecommons.org/licenses/by-sa/3.0/",
        "musicinfo": {
            "vocalinstrumental": "instrumental",
            "lang": "",
            "gender": "",
            "acousticelectric": "electric",
            "speed": "medium",
            "tags": {"genres": ["rock", "pop"], "instruments": ["guitar"], "vartags": []},
        },
    }
    result.update(overrides)
    return result


TRACKS = [
    track(0),
    track(1, musicinfo={"tags": {"genres": ["techno"], "instruments": [], "vartags": []}}),
    track(2, audiodownload_allowed=False, audiodownload=""),  # the artist forbids downloads
    track(3),  # a single: its own image
    track(4, image="{base}/img/missing.jpg"),  # a single whose image is gone (404)
]


class FakeJamendo(BaseHTTPRequestHandler):
    requests: list[str] = []
    audio = b""
    fail_audio_once: set[str] = set()

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        type(self).requests.append(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if url.path == "/v3.0/tracks/":
            if query.get("client_id") != CLIENT_ID:
                headers = {"status": "failed", "code": 5, "results_count": 0}
                headers |= {"error_message": "Invalid client_id", "warnings": ""}
                return self.send(200, json.dumps({"headers": headers, "results": []}).encode())
            offset, limit = int(query["offset"]), int(query["limit"])
            page = TRACKS[offset : offset + limit]
            page = [json.loads(json.dumps(t).replace("{base}", base)) for t in page]
            more = offset + limit < len(TRACKS)
            headers = {"status": "success", "code": 0, "error_message": "", "warnings": ""}
            headers |= {"results_count": len(page), "next": f"{base}/next" if more else ""}
            return self.send(200, json.dumps({"headers": headers, "results": page}).encode())
        if url.path == "/v3.0/garbage/tracks/":
            return self.send(200, b"<html>maintenance</html>")
        if url.path.startswith("/audio/"):
            if url.path in self.fail_audio_once:
                self.fail_audio_once.discard(url.path)
                return self.send(503, b"busy")
            return self.send(200, self.audio)
        if url.path.startswith("/img/") and "missing" not in url.path:
            color = (200, 40, 40) if "album" in url.path else (40, 40, 200)
            return self.send(200, image_bytes(color, size=(64, 64)))
        return self.send(404, b"not found")

    def send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip_path):
    FakeJamendo.audio = cut_clip(clip_path, tmp_path_factory.mktemp("clip") / "c.mp3").read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJamendo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


FAST = Http(timeout=5, retries=2, backoff=0.01, secret=CLIENT_ID)


def test_lists_every_page(server):
    FakeJamendo.requests.clear()
    found = list(list_tracks(CLIENT_ID, api_url=f"{server}/v3.0", page_size=2, http=FAST))
    assert [t["id"] for t in found] == [t["id"] for t in TRACKS]
    pages = [r for r in FakeJamendo.requests if r.startswith("/v3.0/tracks/")]
    offsets = [
        dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(p).query))["offset"] for p in pages
    ]
    assert offsets == ["0", "2", "4"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(pages[0]).query))
    assert query["include"] == "musicinfo" and query["format"] == "json"


def test_download_layout_and_resume(server, tmp_path):
    out = tmp_path / "jamendo"
    FakeJamendo.fail_audio_once = {"/audio/1000.mp3"}  # a 503 the retry gets past
    summary = collect(CLIENT_ID, out, limit=10, api_url=f"{server}/v3.0", http=FAST)
    assert (summary.listed, summary.downloaded, summary.present) == (5, 3, 0)
    assert not FakeJamendo.fail_audio_once  # the 503 was served, and retried past
    skipped = dict(summary.skipped)
    assert "does not allow downloads" in skipped["1002 The Testers - Song 2"]
    assert "404" in skipped["1004 The Testers - Song 4"]

    album = out / "The Testers" / "First Album"
    single = out / "The Testers" / "1003 Song 3"
    assert sorted(p.name for p in album.iterdir()) == [
        "1000 Song 0.mp3",
        "1001 Song 1.mp3",
        "cover.jpg",
    ]
    assert sorted(p.name for p in single.iterdir()) == ["1003 Song 3.mp3", "cover.jpg"]
    assert (album / "1000 Song 0.mp3").read_bytes() == FakeJamendo.audio
    assert not list(out.rglob("*.tmp")) and not (out / "The Testers" / "1004 Song 4").exists()

    rows = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    assert [r["jamendo_id"] for r in rows] == ["1000", "1001", "1003"]
    first = rows[0]
    assert first["audio"] == "The Testers/First Album/1000 Song 0.mp3"
    assert first["image"] == "The Testers/First Album/cover.jpg"
    assert (first["title"], first["artist"], first["album"]) == (
        "Song 0",
        "The Testers",
        "First Album",
    )
    assert first["date"] == "2019-01-15" and first["category"] == "rock"
    assert first["license"] == "http://creativecommons.org/licenses/by-sa/3.0/"
    assert rows[1]["category"] == "electronic"  # Jamendo genre "techno"

    FakeJamendo.requests.clear()
    manifest_before = (out / MANIFEST).read_bytes()
    again = collect(CLIENT_ID, out, limit=10, api_url=f"{server}/v3.0", http=FAST)
    assert (again.downloaded, again.present) == (0, 3)
    fetched = [r for r in FakeJamendo.requests if not r.startswith("/v3.0/")]
    assert fetched == ["/img/missing.jpg"]  # only the still-missing cover is tried again
    assert (out / MANIFEST).read_bytes() == manifest_before


def test_limit_counts_tracks_already_there(server, tmp_path):
    out = tmp_path / "j"
    first = collect(CLIENT_ID, out, limit=1, api_url=f"{server}/v3.0", http=FAST)
    assert (first.downloaded, first.listed) == (1, 1)
    second = collect(CLIENT_ID, out, limit=2, api_url=f"{server}/v3.0", http=FAST)
    assert (second.present, second.downloaded) == (1, 1)
    assert len((out / MANIFEST).read_text().splitlines()) == 2


def test_api_errors_are_clear(server, tmp_path):
    with pytest.raises(JamendoError, match="code 5.*Invalid client_id"):
        collect("wrong-id", tmp_path / "x", api_url=f"{server}/v3.0", http=FAST)
    with pytest.raises(JamendoError, match="not JSON"):
        collect(CLIENT_ID, tmp_path / "x", api_url=f"{server}/v3.0/garbage", http=FAST)
    with pytest.raises(JamendoError, match="HTTP 404") as exc:
        collect(CLIENT_ID, tmp_path / "x", api_url=f"{server}/nothing", http=FAST)
    assert CLIENT_ID not in str(exc.value)  # the client id never lands in messages
    assert not (tmp_path / "x").exists()


def test_unreachable_api_retries_then_fails(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(JamendoError, match="cannot fetch"):
        collect(CLIENT_ID, tmp_path / "x", api_url=f"http://127.0.0.1:{port}/v3.0", http=FAST)


def test_cli(server, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JAMENDO_CLIENT_ID", raising=False)
    out = tmp_path / "cli"
    assert main(parse_args(["--output_dir", str(out), "--api_url", f"{server}/v3.0"])) == 2
    assert "JAMENDO_CLIENT_ID" in capsys.readouterr().err
    monkeypatch.setenv("JAMENDO_CLIENT_ID", CLIENT_ID)
    argv = [
        "--output_dir",
        str(out),
        "--api_url",
        f"{server}/v3.0",
        "--limit",
        "2",
        "--retries",
        "0",
    ]
    assert main(parse_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "2 downloaded" in printed and f"--manifest {out / MANIFEST}" in printed
    assert main(parse_args([*argv[:-2], "--client_id", "bad"])) == 1
    assert "Invalid client_id" in capsys.readouterr().err
    for bad in (["--limit", "0"], ["--timeout", "0"], ["--api_url", "ftp://x"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(["--output_dir", str(out), *bad])
        assert exc.value.code == 2


def test_summary_lists_skips():
    summary = CollectSummary(Path("d"), listed=2, downloaded=1, skipped=[("1 A - B", "why")])
    assert "1 A - B: why" in summary.format()


def test_the_dataset_builder_reads_the_download(server, tmp_path):
    from albumcover.ear.tagger import Tagger
    from train.dataset.build import build_dataset

    out = tmp_path / "jamendo"
    collect(CLIENT_ID, out, limit=10, api_url=f"{server}/v3.0", http=FAST)
    dataset = tmp_path / "dataset"
    summary = build_dataset(
        dataset,
        manifest=out / MANIFEST,
        resolution=32,
        validation_split=0.0,
        tagger=Tagger.load("MTT_musicnn"),
        progress=False,
    )
    assert summary.rows["train"] == 3 and not summary.skipped
    rows = [json.loads(x) for x in (dataset / "train" / "metadata.jsonl").read_text().splitlines()]
    assert {r["license"] for r in rows} == {"http://creativecommons.org/licenses/by-sa/3.0/"}
    assert {r["category"] for r in rows} == {"rock", "electronic"}
    # the two album tracks share the album cover, the single has its own
    assert len({r["file_name"] for r in rows}) == 2
