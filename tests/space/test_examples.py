"""Songs to click (space/examples.py): the built-in list, a manifest as a local example source,
fetching into the cache, and what is left out when a song cannot be had."""

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from space.examples import (
    DEFAULT_SONGS,
    ExampleError,
    ExampleSong,
    fetch_examples,
    read_manifest,
)
from tests.example_songs import write_example_source


def test_the_built_in_songs():
    """Three or four songs of different genres, each with an open licence and the page that
    states it, fetched over https."""
    assert 3 <= len(DEFAULT_SONGS) <= 4
    assert len({song.genre for song in DEFAULT_SONGS}) == len(DEFAULT_SONGS)
    for song in DEFAULT_SONGS:
        assert song.licence.startswith(("CC BY", "CC0")), song
        for url in (song.url, song.licence_url, song.source):
            assert urllib.parse.urlsplit(url).scheme == "https", url
        credit = song.attribution()
        assert song.title in credit and song.artist in credit and song.licence in credit


def test_a_local_source(tmp_path, clip_path):
    manifest = write_example_source(tmp_path / "songs", clip_path)
    songs = read_manifest(str(manifest))
    assert [s.title for s in songs] == ["Night Drive", "Pad and Kick"]
    assert songs[0].url == clip_path.resolve().as_uri()
    assert songs[1].url == (tmp_path / "songs" / "pad-and-kick.wav").as_uri()  # relative
    assert songs[1].date == ""  # optional
    assert read_manifest(manifest.as_uri()) == songs  # a file:// URL reads the same

    cache = tmp_path / "cache"
    fetched = fetch_examples(songs, cache)
    assert [song for song, _ in fetched] == list(songs)
    assert fetched[0][1].read_bytes() == clip_path.read_bytes()
    assert {path.parent for _, path in fetched} == {cache}
    # a second start reads the cache: the source may be gone
    (tmp_path / "songs" / "pad-and-kick.wav").unlink()
    assert fetch_examples(songs, cache) == fetched


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "cannot read it"),
        ('{"title": "a"}', "not a JSON list"),
        ('[{"title": "a"}]', "song 1 must have the fields"),
        ('[{"title": "a", "artist": "b", "genre": "c", "url": "d", "licence": "e", '
         '"licence_url": "f", "source": "g", "extra": 1}]', "song 1 must have the fields"),
        ('[{"title": 1, "artist": "b", "genre": "c", "url": "d", "licence": "e", '
         '"licence_url": "f", "source": "g"}]', "fields are text"),
    ],
)  # fmt: skip
def test_a_broken_manifest_says_what_is_wrong(tmp_path, text, message):
    manifest = tmp_path / "examples.json"
    manifest.write_text(text)
    with pytest.raises(ExampleError, match=message) as error:
        read_manifest(str(manifest))
    assert str(manifest) in str(error.value)
    with pytest.raises(ExampleError, match="cannot read it"):
        read_manifest(str(tmp_path / "missing.json"))


class _Site:
    """A web server on 127.0.0.1 answering each path with (status, body)."""

    def __init__(self, routes: dict[str, tuple[int, bytes]]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def song(url: str, title: str = "t") -> ExampleSong:
    return ExampleSong(title, "a", "g", url, "CC0 1.0", "https://l", "https://s")


def test_songs_that_cannot_be_had_are_left_out(tmp_path, clip_path, caplog):
    """Over HTTP: a song is fetched; a missing one (404), an error page served as a song and a
    server that does not answer are left out with a log line, and nothing half-written stays
    in the cache."""
    site = _Site(
        {
            "/song.mp3": (200, clip_path.read_bytes()),
            "/page.mp3": (200, b"<html>a captcha, not a song</html>"),
        }
    )
    try:
        songs = (
            song(f"{site.url}/song.mp3", "good"),
            song(f"{site.url}/gone.mp3", "gone"),
            song(f"{site.url}/page.mp3", "page"),
            song("http://127.0.0.1:9/song.mp3", "offline"),  # discard port: refused
        )
        cache = tmp_path / "cache"
        fetched = fetch_examples(songs, cache, timeout=10)
    finally:
        site.close()
    assert [s.title for s, _ in fetched] == ["good"]
    assert [p.name for p in cache.iterdir()] == [fetched[0][1].name]
    for title in ("gone", "page", "offline"):
        assert f"example song '{title}' left out" in caplog.text
    assert "is not an audio file" in caplog.text


def test_no_songs_no_examples(tmp_path):
    assert fetch_examples((), tmp_path / "cache") == []


@pytest.mark.parametrize("value", [-1, 2, True, "0", None, 1.0, [0]])
def test_a_click_must_name_a_song(value):
    """What a client sends for a click on a song to click (the examples' index) is checked like
    every other value: a song's index, else a refusal that says so."""
    import gradio as gr

    from space.page import _example_index

    check = _example_index(2)
    assert check("example", 1) == 1
    with pytest.raises(gr.Error, match=r"example must be a song.{1,2}s index, 0 to 1; got "):
        check("example", value)
