"""The `rar` command. Each sub-command lives in `rar/commands/<name>.py` and registers itself here.

Command modules import heavy libraries (torch, transformers) inside the command functions,
so `rar --help` stays instant.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="rar",
    help="RAR: retrieval-augmented conversational movie recommendation with RL post-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (module under rar.commands, attribute): a typer.Typer is added as a group, a function as a command.
COMMANDS: list[tuple[str, str]] = [
    ("corpus_cmd", "build_corpus"),
    ("corpus_cmd", "corpus_app"),
    ("data_cmd", "data_app"),
    ("train_cmd", "train"),
    ("pretrain_cmd", "pretrain"),
    ("download_cmd", "download"),
    ("evaluate_cmd", "evaluate"),
    ("report_cmd", "report"),
    ("rank_cmd", "rank"),
    ("rank_cmd", "recommend"),
    ("quickstart_cmd", "quickstart"),
    ("fit_ranker_cmd", "fit_ranker"),
    ("demo_cmd", "demo"),
]


def _register() -> None:
    for module_name, attr in COMMANDS:
        module = importlib.import_module(f"rar.commands.{module_name}")
        target = getattr(module, attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target)
        else:
            app.command()(target)  # named after the function: fit_ranker -> fit-ranker


_register()


def main() -> None:
    from rar.progress import quiet_library_bars

    quiet_library_bars()  # before any command imports transformers
    app()


if __name__ == "__main__":
    main()
