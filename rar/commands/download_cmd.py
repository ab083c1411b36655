"""`rar download`: fetch the official datasets (for users with internet)."""

from __future__ import annotations

from pathlib import Path

import typer

from rar.commands.common import console, user_errors


def download(
    to: Path = typer.Option(
        Path("data"), "--to", help="Directory to download into (the data dir)."
    ),
    datasets: list[str] = typer.Option(
        None,
        "--datasets",
        "-d",
        help="Datasets to fetch (repeat or comma-separate; 'all' for every one). "
        "Default: redial, inspired, reddit, ml-latest-small, ml-100k.",
    ),
    mirror: str = typer.Option(
        None,
        "--mirror",
        help="Fetch https://host/path from MIRROR/host/path instead (also $RAR_DOWNLOAD_MIRROR).",
    ),
    remove_archives: bool = typer.Option(
        False, "--remove-archives", help="Delete zip files after unpacking them."
    ),
    list_only: bool = typer.Option(False, "--list", help="List the datasets and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Download ReDial, INSPIRED, Reddit-Movie, MovieLens and IMDb dumps from their official sources,
    with checksums, resumable transfers and a manifest (rar-download-manifest.json)."""
    from rich.table import Table

    from rar.data.download import download_datasets
    from rar.data.download_sources import SOURCES

    with user_errors():
        if list_only:
            table = Table("dataset", "default", "size", "description", "licence")
            for source in SOURCES.values():
                table.add_row(
                    source.name,
                    "yes" if source.default else "",
                    source.approx_size,
                    source.description,
                    source.licence,
                )
            console.print(table)
            return
        results = download_datasets(
            to,
            datasets or None,
            mirror=mirror,
            progress=not quiet,
            remove_archives=remove_archives,
        )
        table = Table("dataset", "file", "status", "size", "verified by")
        for name, files in results.items():
            for item in files:
                table.add_row(name, item.dest, item.status, f"{item.size:,}", item.verified_by)
        console.print(table)
        console.print(
            f"data directory: [bold]{to}[/] (manifest: {to / 'rar-download-manifest.json'})"
        )
