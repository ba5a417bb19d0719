"""Finding, downloading (from a local fake index), converting and caching the Musicnn weights."""

import hashlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from albumcover.ear import weights
from albumcover.ear.musicnn import WeightsError, build_model
from albumcover.ear.tfbundle import CheckpointError
from albumcover.ear.weights import (
    WHEEL_NAME,
    WHEEL_SHA256,
    WeightsDownloadError,
    fetch_wheel,
    find_wheel_url,
    installed_weights_dir,
    load_model,
    read_wheel_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]
WHEEL = ROOT / ".venv" / "wheels" / WHEEL_NAME


@pytest.fixture(scope="module")
def wheel() -> Path:
    if not WHEEL.is_file():
        pytest.fail(f"{WHEEL} missing: `make setup` keeps the official wheel there")
    return WHEEL


class FakeIndex:
    """A PEP 503 / PEP 691 simple index on 127.0.0.1 serving files from memory or disk."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes | Path]] = {}
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                index.requests.append(self.path)
                if self.path not in index.routes:
                    self.send_error(404)
                    return
                content_type, body = index.routes[self.path]
                data = body.read_bytes() if isinstance(body, Path) else body
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, wheel_body: bytes | Path, *, json_api=False, filename=WHEEL_NAME):
        self.routes[f"/files/ab/{filename}"] = ("application/octet-stream", wheel_body)
        if json_api:
            page = json.dumps(
                {
                    "meta": {"api-version": "1.0"},
                    "name": "musicnn",
                    "files": [{"filename": filename, "url": f"../../files/ab/{filename}"}],
                }
            ).encode()
            self.routes["/simple/musicnn/"] = ("application/vnd.pypi.simple.v1+json", page)
        else:
            page = (
                "<!DOCTYPE html><html><body>"
                '<a href="../../files/ab/musicnn-0.0.9.tar.gz">musicnn-0.0.9.tar.gz</a><br>'
                f'<a href="../../files/ab/{filename}#sha256=00">{filename}</a><br>'
                "</body></html>"
            ).encode()
            self.routes["/simple/musicnn/"] = ("text/html", page)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def index():
    server = FakeIndex()
    yield server
    server.close()


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- locating the installed package --------------------------------------------------------------


def test_installed_package_is_found_without_importing_it():
    # find_spec locates the package; importing it (its extractor imports TensorFlow) would put
    # it in sys.modules
    folder = installed_weights_dir()
    assert "musicnn" not in sys.modules
    assert "tensorflow" not in sys.modules
    assert (folder / "MTT_musicnn" / ".index").is_file()
    assert (folder / "configuration.py").is_file()


# --- the download path ---------------------------------------------------------------------------


@pytest.mark.parametrize("json_api", [False, True], ids=["pep503-html", "pep691-json"])
def test_wheel_url_from_the_simple_index(index, json_api):
    index.publish(b"unused", json_api=json_api)
    url = find_wheel_url(f"{index.url}/simple/")
    assert url == f"{index.url}/files/ab/{WHEEL_NAME}"  # relative href resolved, hash fragment cut


def test_download_checks_the_hash_and_reads_the_checkpoint(index, wheel, tmp_path):
    index.publish(wheel)
    cache = tmp_path / "cache"
    path = fetch_wheel(cache, f"{index.url}/simple")
    assert path == cache / WHEEL_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WHEEL_SHA256
    assert [p.name for p in cache.iterdir()] == [WHEEL_NAME]  # no partial files left
    # a second call reuses the cached wheel without touching the network
    before = len(index.requests)
    assert fetch_wheel(cache, "http://127.0.0.1:1/simple/") == path
    assert len(index.requests) == before
    # and its checkpoint is the one the installed package has
    from_wheel = read_wheel_checkpoint(path, "MTT_vgg")
    installed = installed_weights_dir()
    from_package = weights.read_checkpoint(installed / "MTT_vgg")
    assert from_wheel.keys() == from_package.keys()
    for name in from_wheel:
        np.testing.assert_array_equal(from_wheel[name], from_package[name])


def test_load_model_from_a_downloaded_wheel(index, wheel, tmp_path):
    index.publish(wheel, json_api=True)
    network = load_model(
        "MSD_vgg", cache_dir=tmp_path, index_url=f"{index.url}/simple/", use_installed=False
    )
    reference = load_model("MSD_vgg", cache_dir=tmp_path / "other")
    for (name, a), (_, b) in zip(
        network.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert cached == ["MSD_vgg.safetensors", WHEEL_NAME, "other"]


def test_tampered_wheel_is_refused_and_not_kept(index, tmp_path):
    index.publish(b"PK\x03\x04 a different file with the same name")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsDownloadError, match="is not the pinned") as info:
        fetch_wheel(cache, f"{index.url}/simple/")
    assert "pip install --no-deps musicnn==0.1.0" in str(info.value)
    assert list(cache.iterdir()) == []


def test_cached_wheel_with_a_wrong_hash_is_downloaded_again(index, wheel, tmp_path):
    (tmp_path / WHEEL_NAME).write_bytes(b"truncated download")
    index.publish(wheel)
    path = fetch_wheel(tmp_path, f"{index.url}/simple/")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WHEEL_SHA256


def test_unreachable_index_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{_unused_port()}/simple/"
    with pytest.raises(WeightsDownloadError, match="cannot fetch") as info:
        load_model("MTT_musicnn", cache_dir=tmp_path, index_url=url, use_installed=False)
    message = str(info.value)
    assert url.rstrip("/") in message
    assert "pip install --no-deps musicnn==0.1.0" in message
    assert "weights_dir" in message


def test_index_without_the_wheel(index):
    index.publish(b"", filename="musicnn-0.1.0.tar.gz")
    with pytest.raises(WeightsDownloadError, match=f"does not list {WHEEL_NAME}"):
        find_wheel_url(f"{index.url}/simple/")
    with pytest.raises(WeightsDownloadError, match="404"):
        find_wheel_url(f"{index.url}/other-index/")


def test_malformed_json_page(index):
    index.routes["/simple/musicnn/"] = ("application/vnd.pypi.simple.v1+json", b'{"files": 3}')
    with pytest.raises(WeightsDownloadError, match="malformed PEP 691 JSON"):
        find_wheel_url(f"{index.url}/simple/")


def test_a_file_that_is_not_a_wheel(tmp_path):
    fake = tmp_path / WHEEL_NAME
    fake.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable wheel"):
        read_wheel_checkpoint(fake, "MTT_musicnn")


# --- the safetensors cache -----------------------------------------------------------------------


def _outputs(network: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return network(torch.linspace(0, 3, 187 * 96).reshape(1, 187, 96))


@pytest.fixture(scope="module")
def vgg_outputs(tmp_path_factory) -> torch.Tensor:
    return _outputs(load_model("MTT_vgg", cache_dir=tmp_path_factory.mktemp("cache")))


def _vgg_shapes() -> dict[str, torch.Tensor]:
    return build_model("MTT_vgg").state_dict()


def test_converted_weights_are_cached_and_reused(tmp_path, monkeypatch, vgg_outputs):
    load_model("MTT_vgg", cache_dir=tmp_path)
    cache = tmp_path / "MTT_vgg.safetensors"
    assert cache.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # written atomically

    def no_checkpoint(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(weights, "read_tf_variables", no_checkpoint)
    assert torch.equal(_outputs(load_model("MTT_vgg", cache_dir=tmp_path)), vgg_outputs)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-format", "misfit"])
def test_a_bad_cache_is_rebuilt(tmp_path, damage, vgg_outputs):
    from safetensors.torch import save_file

    cache = tmp_path / "MTT_vgg.safetensors"
    metadata = {"format": weights.CACHE_FORMAT, "source": "musicnn==0.1.0"}
    if damage == "garbage":
        cache.write_bytes(b"\x00" * 100)
    elif damage == "truncated":
        load_model("MTT_vgg", cache_dir=tmp_path)
        cache.write_bytes(cache.read_bytes()[:5000])
    elif damage == "other-format":
        save_file(_vgg_shapes(), cache, metadata={**metadata, "format": "0"})
    else:  # right format, tensors of the wrong shape
        state = _vgg_shapes()
        state["dense.weight"] = torch.zeros(50, 255)
        save_file(state, cache, metadata=metadata)
    assert weights._read_cache(cache, _vgg_shapes()) is None
    assert torch.equal(_outputs(load_model("MTT_vgg", cache_dir=tmp_path)), vgg_outputs)
    assert weights._read_cache(cache, _vgg_shapes()) is not None


def test_unwritable_cache_only_costs_time(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    network = load_model("MTT_vgg", cache_dir=blocker / "sub")  # cannot mkdir under a file
    assert network.dense.weight.shape == (50, 256)
    assert "cannot cache converted weights" in caplog.text


def test_explicit_weights_dir(tmp_path):
    network = load_model("MSD_musicnn", weights_dir=installed_weights_dir(), cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # someone's own weights are not cached as official
    assert network.logits.weight.shape == (50, 200)
    with pytest.raises(CheckpointError, match="weights_dir must hold the musicnn model folders"):
        load_model("MSD_musicnn", weights_dir=tmp_path)


def test_weights_that_do_not_fit_the_model_are_rejected(tmp_path):
    import shutil

    # an MTT_vgg folder holding musicnn weights
    src = installed_weights_dir() / "MTT_musicnn"
    (tmp_path / "MTT_vgg").mkdir()
    for name in (".index", ".data-00000-of-00001"):
        shutil.copyfile(src / name, tmp_path / "MTT_vgg" / name)
    with pytest.raises(WeightsError):
        load_model("MTT_vgg", weights_dir=tmp_path)


def test_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="unknown musicnn model 'vgg'"):
        load_model("vgg", cache_dir=tmp_path)
