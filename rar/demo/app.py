"""The Gradio page: chat on the left, controls on the right, both stages' lists below.

Each browser session has its own :class:`rar.demo.session.Session` in a `gr.State`. Callbacks
are thin: linking, ranking and rendering live in the UI-free modules beside this one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rar.demo.cards import (
    CSS,
    chips_html,
    costs_html,
    empty_stages_html,
    plain,
    stages_html,
)
from rar.demo.engine import RETRIEVER_ONLY, DemoEngine
from rar.demo.linking import LinkedMention, linked_movies
from rar.demo.session import RECOMMENDER, Session, TurnRecord

if TYPE_CHECKING:
    from rar.corpus import Movie

SHOWN_IN_TEXT = 3  # recommendations named in the recommender's chat message


@dataclass
class _Page:
    """The page's Gradio components, so the layout and the event wiring read apart."""

    session: Any
    chat: Any
    text: Any
    chips: Any
    meant: Any
    send: Any
    reset: Any
    ranker: Any
    k: Any
    turn: Any
    picks: Any
    download: Any
    export_note: Any
    stages: Any
    costs: Any


def new_session() -> Session:
    return Session()


def quiet_gradio() -> None:
    """No analytics, no version check, no hub calls: the page must work on a closed network."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class DemoApp:
    """Callbacks over one engine; `build()` lays out the page."""

    def __init__(
        self,
        engine: DemoEngine,
        k: int = 10,
        title: str = "RAR demo",
        about: str = "",
        export_dir: Path | None = None,
    ):
        self.engine = engine
        self.k = int(k)
        self.title = title
        self.about = about
        # `rar demo` passes a directory inside its private temporary one (removed on exit);
        # otherwise the app makes its own 0700 directory and `close()` removes it
        self._own_dir = export_dir is None
        self.export_dir = Path(export_dir or tempfile.mkdtemp(prefix="rar-demo-"))
        self._movies: dict[str, Movie] = {}

    def close(self) -> None:
        """Remove the exports directory when this app made it."""
        if self._own_dir:
            shutil.rmtree(self.export_dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def movie(self, corpus_id: str) -> Movie:
        if corpus_id not in self._movies:
            corpus = self.engine.corpus
            self._movies[corpus_id] = corpus.movie(corpus.index_of(corpus_id))
        return self._movies[corpus_id]

    def link(self, text: str, session: Session) -> list[LinkedMention]:
        return self.engine.linker.link(text or "", session.choices)

    def recommendation_text(self, record: TurnRecord, markdown: bool = False) -> tuple[str, list]:
        """The recommender's chat message and the movies it names (they join the history):
        as the rankers and the export read it, or (`markdown`) as the chat shows it, with every
        title and error escaped (`plain`) and the titles in bold."""
        esc = plain if markdown else str
        bold = "**" if markdown else ""
        if record.error:
            if record.backend != RETRIEVER_ONLY and record.retriever_ids:
                return (
                    f"⚠️ The {esc(record.backend)} ranker failed ({esc(record.error)}), so I have "
                    "no ranking for this turn. The retriever's candidates are listed below.",
                    [],
                )
            return f"⚠️ {esc(record.error)}", []
        movies = [self.engine.movie_option(c) for c in record.shown_ids[:SHOWN_IN_TEXT]]
        names = ", ".join(f"{bold}{esc(m.label)}{bold}" for m in movies)
        who = "the retriever alone" if record.backend == RETRIEVER_ONLY else record.backend
        return f"You might like {names} (top {record.k} below, ranked by {esc(who)}).", movies

    def chat_messages(self, session: Session) -> list[dict[str, str]]:
        """The chat as Gradio renders it (markdown + HTML): what the user typed is shown as
        typed, never rendered; recommender turns show their escaped markdown."""
        return [
            {
                "role": "assistant" if t.role == RECOMMENDER else "user",
                "content": t.display if t.display is not None else plain(t.text),
            }
            for t in session.turns
        ]

    def turn_choices(self, session: Session) -> list[tuple[str, int]]:
        return [
            (f"turn {i}: {r.backend} ({r.status})", i) for i, r in enumerate(session.records, 1)
        ]

    def pick_choices(self, record: TurnRecord) -> list[tuple[str, str]]:
        return [(self.engine.movie_option(c).label, c) for c in record.shown_ids]

    def export(self, session: Session) -> tuple[str | None, str]:
        """Write the session's custom-format file; (path or None, a status line)."""
        if not session.records:
            return None, ""
        path = self.export_dir / f"rar-demo-{session.session_id}.jsonl"
        _, rows, skipped = session.write_custom(path, self.engine.movie_option)
        note = f"{rows} labelled recommendation point(s) in the download"
        if skipped:
            note += (
                f"; {skipped} turn(s) left out (no accepted movie: tick cards or name the one "
                "you pick in your next message)"
            )
        return (str(path) if rows else None), note

    def render(self, session: Session, shown: int | None = None):
        """Everything that depends on the session: chat, stages, costs, turn list, picks."""
        import gradio as gr

        n = len(session.records)
        shown = n if shown is None else shown
        if n and 1 <= shown <= n:
            record = session.records[shown - 1]
            stages = stages_html(record, self.movie, shown)
            picks = gr.update(
                choices=self.pick_choices(record), value=list(record.picks), visible=True
            )
        else:
            stages = empty_stages_html()
            picks = gr.update(choices=[], value=[], visible=False)
        path, note = self.export(session)
        return (
            self.chat_messages(session),
            stages,
            costs_html(session),
            gr.update(choices=self.turn_choices(session), value=shown if n else None),
            picks,
            gr.update(value=path, interactive=path is not None),
            note,
            session,
        )

    def meant_update(self, mentions: list[LinkedMention], session: Session):
        import gradio as gr

        pending = next((m for m in mentions if m.needs_choice), None)
        if pending is None:
            session.pending_key = None
            return gr.update(visible=False, choices=[], value=None)
        session.pending_key = pending.key
        return gr.update(
            visible=True,
            label=f"Is this the movie you meant by “{pending.text}”?",
            choices=[(o.long_label, o.corpus_id) for o in pending.options],
            value=pending.chosen_id,
        )

    # ------------------------------------------------------------------ callbacks
    def on_type(self, text: str, session: Session):
        mentions = self.link(text, session)
        return chips_html(mentions), self.meant_update(mentions, session), session

    def on_meant(self, corpus_id: str | None, text: str, session: Session):
        key = session.pending_key
        if key and corpus_id:
            session.choices[key] = corpus_id
        return self.on_type(text, session)

    def _recommend(self, session: Session, backend: str, k: int) -> TurnRecord:
        turn = len(session.records) + 1
        return self.engine.recommend(
            session.pipeline_turns(), backend, int(k), sample_id=f"demo:{session.session_id}:{turn}"
        )

    def on_send(self, text: str, backend: str, k: int, session: Session):
        text = (text or "").strip()
        if not text:
            return ("", chips_html([]), self.meant_update([], session), *self.render(session))
        mentions = self.link(text, session)
        session.add_seeker(text, linked_movies(mentions))
        record = self._recommend(session, backend, k)
        message, movies = self.recommendation_text(record)
        display, _ = self.recommendation_text(record, markdown=True)
        session.add_recommendation(record, message, movies, display=display)
        return ("", chips_html([]), self.meant_update([], session), *self.render(session))

    def on_rerank(self, backend: str, k: int, session: Session):
        """Another ranker or k: redo the latest recommender turn with it."""
        if session.records and session.record_turns[-1] == len(session.turns) - 1:
            at = session.record_turns[-1]
            turns = session.pipeline_turns(upto=at)
            record = self.engine.recommend(
                turns,
                backend,
                int(k),
                sample_id=f"demo:{session.session_id}:{len(session.records)}",
            )
            message, movies = self.recommendation_text(record)
            display, _ = self.recommendation_text(record, markdown=True)
            session.replace_last_recommendation(record, message, movies, display=display)
        return self.render(session)

    def on_show_turn(self, shown: int | None, session: Session):
        return self.render(session, int(shown) if shown else None)

    def on_picks(self, picks: list[str], shown: int | None, session: Session):
        if session.records:
            index = (int(shown) if shown else len(session.records)) - 1
            session.records[index].picks = list(picks or [])
        path, note = self.export(session)
        import gradio as gr

        return gr.update(value=path, interactive=path is not None), note, session

    def on_reset(self):
        session = Session()
        return ("", chips_html([]), self.meant_update([], session), *self.render(session))

    # ------------------------------------------------------------------ layout
    def build(self):
        """The page: chat and its controls side by side, both stages' lists and the costs
        below, then the events wired to the callbacks above."""
        quiet_gradio()
        import gradio as gr

        with gr.Blocks(title=self.title, analytics_enabled=False) as blocks:
            session = gr.State(new_session)  # called once per browser session
            gr.Markdown(f"## {self.title}\n{self.about}")
            with gr.Row():
                with gr.Column(scale=3):
                    chat = self._chat_column(gr)
                with gr.Column(scale=2):
                    controls = self._controls_column(gr)
            stages = gr.HTML(empty_stages_html(), elem_id="rar-recs")
            costs = gr.HTML(costs_html(Session()), elem_id="rar-costs")
            self._wire(_Page(session=session, stages=stages, costs=costs, **chat, **controls))
        return blocks

    def _chat_column(self, gr: Any) -> dict[str, Any]:
        """The conversation, the message box, the chips of linked titles, send and reset."""
        chat = gr.Chatbot(elem_id="rar-chat", height=380, label="Conversation")
        text = gr.Textbox(
            elem_id="rar-input",
            label="Your message",
            placeholder='Tell me what you like, e.g. I loved "Heat" and Alien',
            lines=1,
            max_lines=4,
        )
        chips = gr.HTML(chips_html([]), elem_id="rar-chips")
        meant = gr.Radio(choices=[], visible=False, elem_id="rar-meant", label="Did you mean")
        with gr.Row():
            send = gr.Button("Send", variant="primary", elem_id="rar-send")
            reset = gr.Button("New conversation", elem_id="rar-reset")
        return dict(chat=chat, text=text, chips=chips, meant=meant, send=send, reset=reset)

    def _controls_column(self, gr: Any) -> dict[str, Any]:
        """Ranker and k, the turn shown, and the picks that label the download."""
        backends = self.engine.backends
        ranker = gr.Radio(choices=backends, value=backends[0], label="Ranker", elem_id="rar-ranker")
        k = gr.Slider(1, 25, value=self.k, step=1, label="k", elem_id="rar-k")
        turn = gr.Dropdown(choices=[], value=None, label="Show turn", elem_id="rar-turn")
        picks = gr.CheckboxGroup(
            choices=[],
            label="I'd watch these (the labels of the download)",
            elem_id="rar-picks",
            visible=False,
        )
        download = gr.DownloadButton(
            "Download this conversation",
            elem_id="rar-download",
            interactive=False,
        )
        export_note = gr.Markdown(elem_id="rar-export-note")
        return dict(
            ranker=ranker, k=k, turn=turn, picks=picks, download=download, export_note=export_note
        )

    def _wire(self, p: _Page) -> None:
        """Each input's event to its callback, with what the callback reads and redraws."""
        rendered = [
            p.chat,
            p.stages,
            p.costs,
            p.turn,
            p.picks,
            p.download,
            p.export_note,
            p.session,
        ]
        sent = [p.text, p.chips, p.meant, *rendered]
        p.text.change(
            self.on_type,
            [p.text, p.session],
            [p.chips, p.meant, p.session],
            trigger_mode="always_last",
            show_progress="hidden",
        )
        p.meant.input(self.on_meant, [p.meant, p.text, p.session], [p.chips, p.meant, p.session])
        p.text.submit(self.on_send, [p.text, p.ranker, p.k, p.session], sent)
        p.send.click(self.on_send, [p.text, p.ranker, p.k, p.session], sent)
        p.ranker.input(self.on_rerank, [p.ranker, p.k, p.session], rendered)
        p.k.change(self.on_rerank, [p.ranker, p.k, p.session], rendered, trigger_mode="always_last")
        p.turn.input(self.on_show_turn, [p.turn, p.session], rendered)
        p.picks.input(
            self.on_picks, [p.picks, p.turn, p.session], [p.download, p.export_note, p.session]
        )
        p.reset.click(self.on_reset, None, sent)

    def theme_and_css(self) -> dict[str, Any]:
        import gradio as gr

        theme = gr.themes.Default(
            font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
            font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
        )
        return {"theme": theme, "css": CSS}
