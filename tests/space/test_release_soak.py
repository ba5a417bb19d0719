"""The release endpoints under repeated calls on the real app: nothing is kept per request on
disk (TMPDIR where it started; every file in gradio's cache registered, so swept and deleted at
shutdown) and the server's memory levels off (benchmarks/bench_release_soak.py, shorter)."""

import argparse

from benchmarks.bench_release_soak import count_files, make_cover, soak, stop_cleanly
from tests.app_server import AppServer
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

ROUNDS, USERS = 6, 3


def test_release_endpoints_keep_no_file_and_their_memory_levels_off(tmp_path, clip_path):
    model = save_tiny_sd(tmp_path / "sd")
    server_dir = tmp_path / "server"
    (server_dir / "tmp").mkdir(parents=True)
    cover = make_cover(tmp_path / "cover.png")
    args = argparse.Namespace(rounds=ROUNDS, users=USERS, size=1400, round_timeout=600.0)
    env = dict(
        ALBUMCOVER_MODEL=str(model),
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
        TMPDIR=str(server_dir / "tmp"),
    )
    lines = []
    with AppServer(server_dir, **env) as server:
        url = server.wait()
        rows = soak(server_dir, url, server.process.pid, args, cover, clip_path, lines.append)
        assert stop_cleanly(server) is not None
    table = "\n".join(lines)
    assert not [e for row in rows[1:] for e in row["errors"]], table
    # nothing per request outside gradio's cache, after every round
    assert [row["kept_names"] for row in rows[1:]] == [[]] * ROUNDS, table
    # every file gradio's cache held was registered with it: none is left after a clean stop
    assert count_files(server_dir / "gradio") == 0, table
    # memory levels off: the last rounds within 2 % of each other (the first ones warm up)
    tail = [row["rss_mb"] for row in rows[-3:]]
    assert max(tail) <= min(tail) * 1.02, table
