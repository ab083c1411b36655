"""`rar download` against a real HTTP server on 127.0.0.1 (Range support, dropped connections)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rar.commands.download_cmd import download as download_command
from rar.data.download import (
    MANIFEST_NAME,
    ChecksumError,
    Downloader,
    download_datasets,
    mirror_url,
)
from rar.data.download_sources import SOURCES, DatasetSource, RemoteFile, resolve_datasets


class RangeServer:
    """Serves `root` like a mirror (`/<host>/<path>`), honouring `Range: bytes=N-`.

    `drop_after[path] = n` makes the next full response for `path` stop after n bytes (the
    connection closes with Content-Length promising more), like a flaky network."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                if rng and not server.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def gets(self, suffix: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path.endswith(suffix)]


def _publish(root: Path, url: str, data: bytes) -> None:
    """Put `data` where the mirror serves `url`."""
    path = root / mirror_url(url, "x")[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


PAYLOAD = bytes(range(256)) * 400  # 100 KiB, several chunks


def _source(**file_kwargs) -> DatasetSource:
    remote = RemoteFile(
        url="https://example.org/data/blob.bin", dest="blob/blob.bin", **file_kwargs
    )
    return DatasetSource("blob", "test blob", "100 KB", (remote,))


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with RangeServer(root) as server:
        yield server


def test_download_verifies_pinned_checksum_and_records_manifest(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = tmp_path / "data"
    result = Downloader(out, mirror=served.url, progress=False).fetch_dataset(_source(sha256=sha))
    assert (out / "blob/blob.bin").read_bytes() == PAYLOAD
    assert result[0].status == "downloaded" and result[0].verified_by == "pinned sha256"
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["files"]["blob/blob.bin"]["sha256"] == sha
    assert not (out / "blob/blob.bin.part").exists()


def test_checksum_mismatch_is_a_clear_error_and_the_file_is_not_kept(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    out = tmp_path / "data"
    downloader = Downloader(out, mirror=served.url, progress=False)
    with pytest.raises(
        ChecksumError, match="checksum mismatch for https://example.org/data/blob.bin"
    ):
        downloader.fetch_dataset(_source(md5="0" * 32))
    assert not (out / "blob/blob.bin").exists()
    assert not (out / "blob/blob.bin.part").exists()
    assert (
        "blob/blob.bin"
        not in json.loads(
            (out / MANIFEST_NAME).read_text() if (out / MANIFEST_NAME).exists() else '{"files": {}}'
        )["files"]
    )


def test_resume_from_partial_file_uses_range_request(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    out = tmp_path / "data"
    part = out / "blob/blob.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:30_000])
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    Downloader(out, mirror=served.url, progress=False).fetch_dataset(_source(md5=md5))
    assert (out / "blob/blob.bin").read_bytes() == PAYLOAD
    assert served.gets("blob.bin") == ["bytes=30000-"]


def test_dropped_connection_is_resumed_automatically(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    served.drop_after["/example.org/data/blob.bin"] = 10_000
    out = tmp_path / "data"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    Downloader(out, mirror=served.url, progress=False).fetch_dataset(_source(sha256=sha))
    assert (out / "blob/blob.bin").read_bytes() == PAYLOAD
    ranges = served.gets("blob.bin")
    assert ranges[0] is None and len(ranges) == 2
    assert int(ranges[1].split("=")[1].rstrip("-")) >= 10_000


def test_server_ignoring_range_restarts_cleanly(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    served.ignore_range = True
    out = tmp_path / "data"
    part = out / "blob/blob.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage-that-must-not-survive")
    Downloader(out, mirror=served.url, progress=False).fetch_dataset(
        _source(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    )
    assert (out / "blob/blob.bin").read_bytes() == PAYLOAD


def test_complete_files_are_skipped(served, tmp_path):
    _publish(served.root, "https://example.org/data/blob.bin", PAYLOAD)
    out = tmp_path / "data"
    Downloader(out, mirror=served.url, progress=False).fetch_dataset(_source())
    before = len(served.requests)
    again = Downloader(out, mirror=served.url, progress=False).fetch_dataset(_source())
    assert again[0].status == "skipped"
    assert len(served.requests) == before
    assert again[0].verified_by == "none published: sha256 recorded at download"


def test_unknown_dataset_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'redail'.*redial"):
        resolve_datasets(["redail"])
    assert [s.name for s in resolve_datasets(["redial,inspired", "redial"])] == [
        "redial",
        "inspired",
    ]
    assert len(resolve_datasets(["all"])) == len(SOURCES)


def test_movielens_zip_with_published_md5_unpacks_into_loader_layout(served, tmp_path):
    """The real registry entry, served by the mirror: GroupLens' .md5 file is checked."""
    archive = _zip(
        {
            "ml-latest-small/ratings.csv": "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n",
            "ml-latest-small/movies.csv": "movieId,title,genres\n31,Dangerous Minds (1995),Drama\n",
        }
    )
    url = SOURCES["ml-latest-small"].files[0].url
    _publish(served.root, url, archive)
    _publish(
        served.root,
        url + ".md5",
        f"MD5 (ml-latest-small.zip) = {hashlib.md5(archive).hexdigest()}\n".encode(),
    )
    out = tmp_path / "data"
    results = download_datasets(out, ["ml-latest-small"], mirror=served.url, progress=False)
    item = results["ml-latest-small"][0]
    assert item.verified_by.startswith("published md5")
    assert (out / "movielens/ml-latest-small/ratings.csv").read_text().startswith("userId")
    assert "movielens/ml-latest-small/movies.csv" in item.extracted
    # a wrong published md5 is refused
    _publish(served.root, url + ".md5", b"0123456789abcdef0123456789abcdef  ml-latest-small.zip\n")
    (out / MANIFEST_NAME).unlink()
    (out / "movielens/ml-latest-small.zip").unlink()
    with pytest.raises(ChecksumError):
        download_datasets(out, ["ml-latest-small"], mirror=served.url, progress=False)


def test_cli_downloads_inspired_and_flattens_redial_zip(served, tmp_path):
    for remote in SOURCES["inspired"].files:
        _publish(served.root, remote.url, b"col_a\tcol_b\n1\t2\n")
    redial = SOURCES["redial"].files[0]
    _publish(
        served.root,
        redial.url,
        _zip(
            {
                "train_data.jsonl": "{}\n",
                "movies_with_mentions.csv": "movieId,movieName,nbMentions\n",
            }
        ),
    )
    app = typer.Typer()
    app.command()(download_command)
    out = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        [
            "--to",
            str(out),
            "-d",
            "inspired,redial",
            "--mirror",
            served.url,
            "--quiet",
            "--remove-archives",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "inspired/dialog_data/train.tsv").exists()
    assert (out / "inspired/movie_database.tsv").exists()
    assert (out / "redial/train_data.jsonl").exists()
    assert not (out / "redial/redial_dataset.zip").exists()
    rerun = CliRunner().invoke(
        app, ["--to", str(out), "-d", "redial", "--mirror", served.url, "--quiet"]
    )
    assert rerun.exit_code == 0 and "skipped" in rerun.output
    bad = CliRunner().invoke(app, ["--to", str(out), "-d", "nope", "--mirror", served.url])
    assert bad.exit_code == 2 and "unknown dataset 'nope'" in bad.output


def test_missing_file_on_server_is_a_clear_error(served, tmp_path):
    from rar.data.download import DownloadError

    with pytest.raises(DownloadError, match="HTTP 404"):
        Downloader(tmp_path / "d", mirror=served.url, progress=False).fetch_dataset(_source())
