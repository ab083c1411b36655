"""Fetch the official datasets into the directory layout the loaders read (what to fetch, and
from where, is the table in `rar.data.download_sources`).

Why this module exists: the project never ships data, so users with internet need one command
that gets every source from its official home, checks it, survives a dropped connection, and
puts the files where `rar.data` and `corpus_builder` look for them (the same layout as
`../shared/data`).

- Checksums: a pinned md5/sha256 where the publisher gives one (GroupLens), or the publisher's
  own `<file>.md5` next to the file; where nothing is published (GitHub raw files, the Hugging
  Face release, IMDb's daily dumps) the sha256 measured at download time is recorded in
  `rar-download-manifest.json`, so later runs can tell when a source changed.
- Resumable: bytes go to `<file>.part`; a rerun (or an automatic retry after a dropped
  connection) asks for the rest with an HTTP `Range` header.
- Skips files the manifest already records as complete (same size, extracted files present).
- `mirror` (or `$RAR_DOWNLOAD_MIRROR`) replaces `https://host/path` by `<mirror>/host/path`,
  for mirrors, proxies and the loopback server the tests use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rar.atomic_files import atomic_write_text
from rar.data.download_sources import DatasetSource, RemoteFile, resolve_datasets
from rar.errors import InputError, RarError

MIRROR_ENV = "RAR_DOWNLOAD_MIRROR"
MANIFEST_NAME = "rar-download-manifest.json"


class DownloadError(RarError, RuntimeError):
    """A file could not be fetched (network, HTTP status) after all retries."""


class ChecksumError(InputError):
    """A downloaded file does not match its published checksum; the file is not kept."""


def mirror_url(url: str, mirror: str | None) -> str:
    """`https://host/path` -> `<mirror>/host/path` (unchanged without a mirror)."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def file_digests(path: Path) -> tuple[str, str]:
    """(md5, sha256) of a file, read in chunks."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


@dataclass
class FileResult:
    dest: str
    status: str  # "downloaded" | "skipped"
    size: int
    sha256: str
    verified_by: str
    extracted: list[str] = field(default_factory=list)


class Downloader:
    """Downloads `RemoteFile`s into `root` with resume, verification, extraction and a manifest."""

    def __init__(
        self,
        root: str | Path,
        mirror: str | None = None,
        progress: bool = True,
        retries: int = 3,
        timeout: float = 60.0,
        remove_archives: bool = False,
        client: httpx.Client | None = None,
    ):
        self.root = Path(root)
        self.mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
        self.progress = progress
        self.retries = retries
        self.remove_archives = remove_archives
        self._client = client or httpx.Client(
            timeout=timeout, follow_redirects=True, headers={"User-Agent": "rar-download/0.1"}
        )
        self.manifest_path = self.root / MANIFEST_NAME
        self.manifest: dict[str, Any] = self._read_manifest()

    # -- manifest --------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"files": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{self.manifest_path}: not valid JSON ({exc}); delete it to start over"
            ) from exc
        data.setdefault("files", {})
        return data

    def _write_manifest(self) -> None:
        atomic_write_text(self.manifest_path, json.dumps(self.manifest, indent=2, sort_keys=True))

    def _is_complete(self, remote: RemoteFile) -> bool:
        entry = self.manifest["files"].get(remote.dest)
        if not entry or entry.get("url") != remote.url:
            return False
        if any(not (self.root / p).exists() for p in entry.get("extracted", [])):
            return False
        path = self.root / remote.dest
        if path.exists():
            return path.stat().st_size == entry.get("size")
        # an archive removed after extraction still counts when its files are there
        return bool(entry.get("archive_removed")) and bool(entry.get("extracted"))

    # -- public ----------------------------------------------------------------------------
    def fetch_dataset(self, source: DatasetSource) -> list[FileResult]:
        return [self.fetch(remote) for remote in source.files]

    def fetch(self, remote: RemoteFile) -> FileResult:
        """Download (or skip) one file, verify it, unpack it if it is an archive, record it."""
        if self._is_complete(remote):
            entry = self.manifest["files"][remote.dest]
            return FileResult(
                remote.dest,
                "skipped",
                entry["size"],
                entry["sha256"],
                entry["verified_by"],
                list(entry.get("extracted", [])),
            )
        dest = self.root / remote.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        known = self.manifest["files"].get(remote.dest)
        if dest.exists() and known and dest.stat().st_size != known.get("size"):
            dest.unlink()  # a damaged copy of a file we fetched before: fetch it again
        expected_md5, verified_by = self._expected_md5(remote)
        if not dest.exists():
            self._download_with_retries(remote, dest.with_name(dest.name + ".part"))
            part = dest.with_name(dest.name + ".part")
        else:  # a complete file from elsewhere (e.g. a copy): verify instead of fetching again
            part = dest
        md5, sha = file_digests(part)
        problems = []
        if expected_md5 and md5 != expected_md5.lower():
            problems.append(f"md5 {md5} != expected {expected_md5} ({verified_by})")
        if remote.sha256 and sha != remote.sha256.lower():
            problems.append(f"sha256 {sha} != expected {remote.sha256}")
        if problems:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"checksum mismatch for {remote.url}: {'; '.join(problems)}. The file was deleted; "
                "rerun to fetch it again, or report the changed source."
            )
        if remote.sha256:
            verified_by = "pinned sha256" if not expected_md5 else verified_by + " + pinned sha256"
        if not verified_by:
            verified_by = "none published: sha256 recorded at download"
        if part != dest:
            os.replace(part, dest)
        size = dest.stat().st_size
        extracted: list[str] = []
        if remote.extract_to:
            extracted = self._extract(dest, remote)
        entry = {
            "url": remote.url,
            "size": size,
            "md5": md5,
            "sha256": sha,
            "verified_by": verified_by,
            "extracted": extracted,
            "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if remote.extract_to and self.remove_archives:
            dest.unlink()
            entry["archive_removed"] = True
        self.manifest["files"][remote.dest] = entry
        self._write_manifest()
        return FileResult(remote.dest, "downloaded", size, sha, verified_by, extracted)

    # -- internals -------------------------------------------------------------------------
    def _expected_md5(self, remote: RemoteFile) -> tuple[str | None, str]:
        """The pinned md5, else the publisher's md5 file (which must agree with a pinned one)."""
        published = None
        if remote.checksum_url:
            url = mirror_url(remote.checksum_url, self.mirror)
            try:
                response = self._client.get(url)
                if response.status_code == 200:
                    match = re.search(r"\b[0-9a-fA-F]{32}\b", response.text)
                    published = match.group(0).lower() if match else None
            except httpx.HTTPError:
                published = None
        if remote.md5 and published and remote.md5.lower() != published:
            raise ChecksumError(
                f"{remote.checksum_url} publishes md5 {published} but rar pins {remote.md5}: "
                "the release changed; refusing to guess which is right"
            )
        if remote.md5:
            return remote.md5.lower(), "pinned md5" + (
                " (= published md5 file)" if published else ""
            )
        if published:
            return published, f"published md5 ({remote.checksum_url})"
        return None, ""

    def _download_with_retries(self, remote: RemoteFile, part: Path) -> None:
        url = mirror_url(remote.url, self.mirror)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                self._download(url, part, remote.dest)
                return
            except (httpx.TransportError, _Incomplete) as exc:  # resumable: keep the .part
                last = exc
                time.sleep(min(0.2 * 2**attempt, 5.0))
            except httpx.HTTPStatusError as exc:
                raise DownloadError(
                    f"GET {url} failed with HTTP {exc.response.status_code}"
                ) from None
        raise DownloadError(
            f"GET {url} failed after {self.retries + 1} attempts ({last}); "
            f"partial data kept in {part}, rerun to resume"
        )

    def _download(self, url: str, part: Path, label: str) -> None:
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._client.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and have:
                # nothing left to send: the .part already holds the whole file
                total = _content_range_total(response.headers.get("content-range", ""))
                if total == have:
                    return
                part.unlink()
                raise _Incomplete("server refused the resume range; restarting")
            response.raise_for_status()
            if response.status_code == 206 and have:
                start = _content_range_start(response.headers.get("content-range", ""))
                if start != have:
                    part.unlink()
                    raise _Incomplete(f"server resumed at byte {start}, not {have}; restarting")
                mode, done = "ab", have
            else:  # 200: the server sent the whole file; start over
                mode, done = "wb", 0
            length = response.headers.get("content-length")
            total = done + int(length) if length is not None else None
            with part.open(mode) as handle, _progress_bar(label, total, done, self.progress) as bar:
                for chunk in response.iter_bytes():  # as received, so a drop keeps what came
                    handle.write(chunk)
                    bar(len(chunk))
            got = part.stat().st_size
            if total is not None and got != total:
                raise _Incomplete(f"connection closed at byte {got} of {total}")

    def _extract(self, archive: Path, remote: RemoteFile) -> list[str]:
        target = self.root / str(remote.extract_to)
        target.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as exc:
            raise InputError(
                f"{archive} is not a valid zip archive ({exc}); delete it and rerun"
            ) from exc
        with zf:
            for info in zf.infolist():
                name = info.filename
                if (
                    info.is_dir()
                    or name.startswith("__MACOSX/")
                    or Path(name).name.startswith("._")
                ):
                    continue
                parts = Path(name).parts
                if Path(name).is_absolute() or ".." in parts:
                    raise InputError(f"{archive}: refusing unsafe member path '{name}'")
                out = target / (Path(name).name if remote.flatten else Path(name))
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, out.open("wb") as dst:
                    for block in iter(partial(src.read, 1 << 20), b""):
                        dst.write(block)
                written.append(out.relative_to(self.root).as_posix())
        return written


class _Incomplete(Exception):
    """The transfer stopped early; the .part file is kept for a resume."""


def _content_range_start(value: str) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", value)
    return int(match.group(1)) if match else None


def _content_range_total(value: str) -> int | None:
    match = re.search(r"/(\d+)\s*$", value)
    return int(match.group(1)) if match else None


class _progress_bar:  # noqa: N801 - used like a function in a with-statement
    """A progress bar in bytes (see rar.progress) that is a no-op when progress is off."""

    def __init__(self, label: str, total: int | None, initial: int, enabled: bool):
        from rar.progress import progress_bar

        self._bar = progress_bar(
            total, label, "B", enabled=enabled, initial=initial, unit_scale=True
        )

    def __enter__(self):
        return self

    def __call__(self, n: int) -> None:
        self._bar.update(n)

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def download_datasets(
    to: str | Path,
    datasets: Iterable[str] | None = None,
    mirror: str | None = None,
    progress: bool = True,
    remove_archives: bool = False,
    retries: int = 3,
) -> dict[str, list[FileResult]]:
    """Fetch the named datasets (defaults when None) into `to`; returns per-dataset file results."""
    sources = resolve_datasets(datasets)
    downloader = Downloader(
        to, mirror=mirror, progress=progress, remove_archives=remove_archives, retries=retries
    )
    return {source.name: downloader.fetch_dataset(source) for source in sources}
