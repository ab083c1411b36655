"""Conversation loaders on the real files (ReDial, INSPIRED TSV / JSONL / context CSV) and on
small files written here in the official formats (ReDial, INSPIRED TSV, Reddit-Movie turn
JSONL, custom CSV and JSONL)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rar.data.custom import load_custom, parse_context
from rar.data.errors import DataFormatError
from rar.data.inspired import load_inspired_jsonl, load_inspired_tsv
from rar.data.reddit import load_reddit
from rar.data.redial import load_redial
from rar.data.registry import detect_file_format, load_samples_from_file
from rar.data.samples import summarize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def redial(data_dir):
    return load_redial(sorted((data_dir / "redial").glob("train_part_*.jsonl")))


# ------------------------------------------------------------------ ReDial


@pytest.mark.needs_data
def test_real_redial_deduplicated_with_roles_and_titles(redial):
    assert len(redial.dialogues) == 4101 and redial.duplicates == 50
    assert len({d.dialogue_id for d in redial.dialogues}) == 4101
    dialogue = next(d for d in redial.dialogues if d.dialogue_id == "16162")
    # initiator (271) is the seeker, respondent (147) the recommender
    assert dialogue.turns[0].role == "recommender" and dialogue.turns[1].role == "seeker"
    assert (
        dialogue.turns[1].text == "Hi im looking for a good horroe movie like The Babadook (2014)"
    )
    assert [(m.key, m.title) for m in dialogue.turns[2].mentions] == [
        ("202190", "The Shining (1980)"),
        ("83192", "What Lies Beneath (2000)"),
    ]


@pytest.mark.needs_data
def test_real_redial_prefers_the_unmerged_copy_of_a_duplicate(redial, data_dir):
    dialogue = next(d for d in redial.dialogues if d.dialogue_id == "17917")
    part_b = [json.loads(line) for line in (data_dir / "redial" / "train_part_b.jsonl").open()]
    official = next(r for r in part_b if r["conversationId"] == "17917")
    assert len(dialogue.turns) == len(official["messages"])


@pytest.mark.needs_data
def test_real_redial_samples(data_dir):
    samples = load_samples_from_file(data_dir / "redial" / "train_part_c.jsonl")
    assert samples and all(s.dataset == "redial" and s.targets for s in samples)
    for sample in samples:
        earlier = {m.key for t in sample.context for m in t.mentions}
        assert not earlier & {m.key for m in sample.targets}  # no-shortcut


def write_redial(path, conversations):
    path.write_text("\n".join(json.dumps(c) for c in conversations) + "\n", encoding="utf-8")
    return path


def conversation(cid, messages, mentions, extra=None):
    record = {
        "movieMentions": mentions,
        "respondentQuestions": {},
        "messages": [
            {"timeOffset": i, "text": text, "senderWorkerId": sender, "messageId": 100 + i}
            for i, (sender, text) in enumerate(messages)
        ],
        "conversationId": cid,
        "respondentWorkerId": 7,
        "initiatorWorkerId": 3,
        "initiatorQuestions": {},
    }
    record.update(extra or {})
    return record


def test_written_redial_files_dedupe_across_files_and_tolerate_extra_fields(tmp_path):
    a = write_redial(
        tmp_path / "train_part_a.jsonl",
        [
            conversation(
                "1",
                [(3, "I liked @111 a lot"), (7, "Try @222 and @333")],
                {"111": "Heat  (1995)", "222": "Ronin (1998)"},
                {"custom_annotation": [1, 2]},
            ),
        ],
    )
    b = write_redial(
        tmp_path / "train_part_b.jsonl",
        [
            conversation("1", [(3, "I liked @111 a lot"), (7, "Try @222 and @333")], {}),
            conversation("2", [(3, "hello"), (7, "Hi! @111?")], []),
        ],
    )
    (tmp_path / "movies_with_mentions.csv").write_text(
        "movieId,movieName,nbMentions\n111,Heat (1995),3\n333,Collateral (2004),1\n"
    )
    load = load_redial([a, b])
    assert [d.dialogue_id for d in load.dialogues] == ["1", "2"] and load.duplicates == 1
    recommender = load.dialogues[0].turns[1]
    assert recommender.text == "Try Ronin (1998) and Collateral (2004)"  # title from movie list
    assert [m.title for m in load.dialogues[1].turns[1].mentions] == ["Heat (1995)"]


def test_redial_unknown_sender_and_malformed_line(tmp_path):
    bad = conversation("9", [(5, "who am I")], {})
    path = write_redial(tmp_path / "train_data.jsonl", [bad])
    with pytest.raises(DataFormatError, match=r"train_data\.jsonl, line 1: message 0 sender 5"):
        load_redial([path])
    path.write_text(json.dumps(conversation("1", [], {})) + "\n{not json\n")
    with pytest.raises(DataFormatError, match=r"train_data\.jsonl, line 2: malformed JSON"):
        load_redial([path])
    path.write_text(json.dumps({"conversationId": "1", "messages": []}) + "\n")
    with pytest.raises(DataFormatError, match="line 1: missing field.*initiatorWorkerId"):
        load_redial([path])


# ------------------------------------------------------------------ INSPIRED


@pytest.mark.needs_data
def test_real_inspired_tsv(data_dir):
    dialogues = load_inspired_tsv(data_dir / "inspired" / "dialog_data" / "dev.tsv")
    assert len(dialogues) == 99
    assert sum(len(d.turns) for d in dialogues) == 3538
    first = dialogues[0]
    assert first.dialogue_id == "20191202-103716_425_live.pkl"
    assert first.turns[0].role == "recommender" and first.turns[1].role == "seeker"
    assert first.turns[12].text == 'I guess the "future" portrayed seemed a little dated'
    assert [m.key for m in first.turns[15].mentions] == ["Full Metal Jacket (1987)"]


@pytest.mark.needs_data
def test_real_inspired_jsonl_is_the_same_dev_dialogues(data_dir):
    dialogues = load_inspired_jsonl(data_dir / "inspired" / "dev_annotated.jsonl")
    assert len(dialogues) == 99 and dialogues[0].dialogue_id == "dev_annotated:1"
    turn = next(t for t in dialogues[0].turns if t.mentions)
    assert turn.role == "recommender" and turn.mentions[0].key == "Full Metal Jacket (1987)"


def test_written_inspired_tsv(tmp_path):
    header = (
        "dialog_id\tutt_id\tspeaker\tturn_id\ttext\ttext_with_placeholder\tmovies\tgenres\t"
        "people_names\tmovie_dict\tgenre_dict\tactor_dict\tdirector_dict\tothers_dict\t"
        "expert_label\tsecond_label\tfine_label\tcoarse_label\tmovie_id\n"
    )

    def row(utt, speaker, text, movies=""):
        return f"d1.pkl\t{utt}\t{speaker}\t1\t{text}\t{text}\t{movies}\t\t\t{{}}\t{{}}\t{{}}\t{{}}\t\t\t\t\t\t\n"

    path = tmp_path / "train.tsv"
    path.write_text(
        header
        + row(1, "RECOMMENDER", "Hi! What do you like?")
        + row(3, "RECOMMENDER", "Try Alien or Heat", "Alien (1979); Heat (1995)")
        + row(2, "SEEKER", "I loved QUOTATION_MARKJawsQUOTATION_MARK", "Jaws (1975)"),
        encoding="utf-8",
    )
    (dialogue,) = load_inspired_tsv(path)
    assert [t.role for t in dialogue.turns] == ["recommender", "seeker", "recommender"]
    assert dialogue.turns[1].text == 'I loved "Jaws"'
    assert [m.key for m in dialogue.turns[2].mentions] == ["Alien (1979)", "Heat (1995)"]
    samples = load_samples_from_file(path)
    assert [s.sample_id for s in samples] == ["inspired:d1.pkl:2"]
    assert [m.key for m in samples[0].history] == ["Jaws (1975)"]


def test_inspired_tsv_missing_column_and_bad_speaker(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("dialog_id\tspeaker\ttext\nd\tSEEKER\thi\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv: missing column\(s\) 'movies'"):
        load_inspired_tsv(path)
    path.write_text("dialog_id\tspeaker\ttext\tmovies\nd\tROBOT\thi\t\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv, line 2: speaker 'ROBOT'"):
        load_inspired_tsv(path)


# ------------------------------------------------------------------ custom


@pytest.mark.needs_data
def test_real_context_targets_csv_as_custom_format(data_dir):
    records = load_custom(data_dir / "inspired" / "context_targets" / "train.csv", "inspired")
    samples = [s for r in records for s in r.samples]
    assert sum(len(r.samples) + r.dropped for r in records) == 1448
    first = records[0]
    assert [s.turn_index for s in first.samples][:2] == [2, 8]
    assert [m.key for m in first.samples[0].targets] == ["Knives Out"]
    assert [m.key for m in first.samples[1].history] == ["Knives Out"]
    assert first.samples[0].context[0].role == "recommender"
    assert first.samples[0].context[1].text.startswith("Hello! I'm more of an action movie")
    assert all(s.targets for s in samples)


def test_parse_context_roles_continuations_and_trailing_prompt():
    turns = parse_context(
        "\nSystem: Hi!\nUser: I like\nhorror films\nAssistant: Try Alien\nSystem: "
    )
    assert [(t.role, t.text) for t in turns] == [
        ("recommender", "Hi!"),
        ("seeker", "I like\nhorror films"),
        ("recommender", "Try Alien"),
    ]


def test_written_custom_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text(
        "dialogue_id,context,targets,history\n"
        "a,\"User: something scary\nSystem: \",\"['Alien', 'Heat']\",\n"
        "a,\"User: something scary\nSystem: Alien?\nUser: seen it\nSystem: \",Jaws|Alien,['Alien']\n"
        'b,"User: hi\nSystem: ",[],\n',
        encoding="utf-8",
    )
    records = load_custom(csv_path)
    assert [r.dialogue_id for r in records] == ["a", "b"]
    first, second = records[0].samples
    assert [m.key for m in first.targets] == ["Alien", "Heat"] and first.history == []
    assert [m.key for m in second.targets] == ["Jaws"]  # Alien is in the history: excluded
    assert second.turn_index == 3
    assert records[1].dropped == 1 and records[1].samples == []

    jsonl_path = tmp_path / "mine.jsonl"
    rows = [
        {"context": [{"role": "user", "text": "a comedy?"}], "targets": ["Airplane!"]},
        {
            "context": [
                {"role": "user", "text": "a comedy?"},
                {"role": "assistant", "text": "Airplane!"},
                {"role": "user", "text": "more"},
            ],
            "targets": ["Top Secret!"],
            "history": ["Airplane!"],
            "dialogue_id": "x",
        },
    ]
    jsonl_path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert detect_file_format(jsonl_path) == "custom"
    samples = load_samples_from_file(jsonl_path)
    assert [(s.dialogue_id, s.turn_index) for s in samples] == [("mine:0", 1), ("x", 3)]
    assert [m.key for m in samples[1].history] == ["Airplane!"]


def test_custom_missing_column_and_bad_list(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('context,titles\n"User: hi",[]\n')
    with pytest.raises(DataFormatError, match=r"bad\.csv: missing column 'targets'"):
        load_custom(path)
    path.write_text('context,targets\n"User: hi","[\'Alien\'"\n')
    with pytest.raises(DataFormatError, match=r"bad\.csv, line 2, column 'targets'"):
        load_custom(path)


# ------------------------------------------------------------------ Reddit-Movie


def write_reddit(tmp_path):
    folder = tmp_path / "reddit_movie"
    folder.mkdir()
    (folder / "entity2id.json").write_text(
        json.dumps(
            {"Heat (1995)": "tt0113277", "Alien (1979)": "tt0078748", "Jaws (1975)": "tt0073195"}
        )
    )
    lines = [
        {
            "dialog_id": "t3_abc",
            "turn_id": 1,
            "context": ["Looking for tense thrillers like Heat (1995)"],
            "resp": "Alien is tense as hell",
            "rec": ["tt0078748"],
            "entity": ["tt0113277"],
            "entity_name": ["Heat (1995)"],
        },
        {
            "dialog_id": "t3_abc",
            "turn_id": 3,
            "context": [
                "Looking for tense thrillers like Heat (1995)",
                "Alien is tense as hell",
                "Seen it! More?",
            ],
            "resp": "Jaws, or Heat again",
            "rec": ["tt0073195", "tt0113277"],
            "entity": ["tt0113277", "tt0078748"],
            "entity_name": ["Heat (1995)", "Alien (1979)"],
        },
        {
            "dialog_id": "t3_abc",
            "turn_id": 3,
            "context": ["duplicate"],
            "rec": ["tt0073195"],
            "entity_name": [],
        },
        {"conv_id": "t3_def", "context": ["anything"], "rec": ["tt0113277"], "rec_name": ["Heat"]},
        {"context": ["any"], "resp": "Heat", "rec": ["tt0113277"], "entity_name": ["Heat (1995)"]},
    ]
    path = folder / "test.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_written_reddit_turn_jsonl(tmp_path):
    path = write_reddit(tmp_path)
    assert detect_file_format(path) == "reddit"
    loaded = load_reddit(path)
    assert loaded.duplicates == 1
    assert [r.dialogue_id for r in loaded.records] == ["t3_abc", "t3_def", "test:5"]
    first, second = loaded.records[0].samples
    assert [t.role for t in second.context] == ["seeker", "recommender", "seeker"]
    assert [m.key for m in first.targets] == ["Alien (1979)"]  # id -> title via entity2id.json
    assert [m.key for m in second.history] == ["Heat (1995)", "Alien (1979)"]
    assert [m.key for m in second.targets] == ["Jaws (1975)"]  # Heat already mentioned
    assert [m.key for m in loaded.records[1].samples[0].targets] == ["Heat"]  # rec_name wins
    assert loaded.records[2].dropped == 1 and loaded.records[2].samples == []


def test_reddit_missing_field(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"context": ["x"], "resp": "y"}) + "\n")
    with pytest.raises(DataFormatError, match=r"r\.jsonl, line 1: missing field\(s\) 'rec'"):
        load_reddit(path)


def test_unreadable_encoding_and_empty_file(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"context": ["caf\xe9"], "rec": ["x"]}\n')
    with pytest.raises(DataFormatError, match=r"latin\.jsonl: cannot decode the file as utf-8"):
        load_samples_from_file(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataFormatError, match="holds no records"):
        load_samples_from_file(empty)
    dropped_only = tmp_path / "dropped.jsonl"
    dropped_only.write_text(
        json.dumps({"context": ["x"], "rec": ["A"], "entity_name": ["A"]}) + "\n"
    )
    with pytest.raises(DataFormatError, match="no samples"):
        load_samples_from_file(dropped_only)


def _write_rows_with_empty_targets(tmp_path: Path, suffix: str) -> Path:
    """Three rows (CSV or JSONL, each its own dialogue); the second has an empty target."""
    path = tmp_path / f"mine{suffix}"
    if suffix == ".csv":
        path.write_text(
            'context,targets\n"User: hi\nSystem: ",Alien\n"User: scary?\nSystem: ",\n'
            '"User: heist\nSystem: ",Heat\n',
            encoding="utf-8",
        )
    else:
        rows = [("User: hi", ["Alien"]), ("User: scary?", []), ("User: heist", ["Heat"])]
        path.write_text(
            "".join(json.dumps({"context": c, "targets": t}) + "\n" for c, t in rows),
            encoding="utf-8",
        )
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_custom_rows_with_empty_targets_are_counted_with_line_and_reason(tmp_path, caplog, suffix):
    path = _write_rows_with_empty_targets(tmp_path, suffix)
    with caplog.at_level(logging.WARNING, logger="rar.data.custom"):
        records = load_custom(path)
    stats = summarize(records)
    line = 3 if suffix == ".csv" else 2  # the CSV header is line 1
    assert (stats.samples, stats.dropped) == (2, 1)
    assert stats.dropped_by_reason == {"the target column is empty": 1}
    assert stats.dropped_rows == [f"{path}, line {line}: the target column is empty"]
    assert f"{path}: 1 of 3 rows give no sample (the target column is empty): line {line}" in (
        caplog.text
    )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_custom_file_with_every_target_empty_names_the_reason_and_rows(tmp_path, suffix):
    path = _write_rows_with_empty_targets(tmp_path, suffix)
    text = path.read_text(encoding="utf-8").replace("Alien", "").replace("Heat", "")
    path.write_text(text.replace('[""]', "[]"), encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_samples_from_file(path)
    message = str(info.value)
    assert "3 dropped: the target column is empty" in message
    assert "mentioned earlier" not in message
    first = 2 if suffix == ".csv" else 1
    assert all(f"{path}, line {n}" in message for n in range(first, first + 3))


def test_data_stats_lists_dropped_custom_rows(tmp_path):
    from typer.testing import CliRunner

    from rar.cli import app

    (tmp_path / "custom").mkdir()
    path = _write_rows_with_empty_targets(tmp_path / "custom", ".csv")
    result = CliRunner().invoke(
        app, ["data", "stats", "--data-dir", str(tmp_path), "--dataset", "custom"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "custom/mine.csv: dropped 1 (the target column is empty)" in output
    assert f"{path}, line 3: the target column is empty" in output


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        (
            "nested.jsonl",
            '{"context": "User: hi", "targets": ["Alien"]}\n'
            '{"context": "User: hi\\nSystem: Alien?\\nUser: more", "targets": [["Heat"]]}\n',
            "line 2, field 'targets': item 1 is [\"Heat\"]",
        ),
        (
            "nested.csv",
            "context,targets,history\n\"User: hi\",\"['Alien', {'title': 'Heat'}]\",[]\n",
            'line 2, column \'targets\': item 2 is {"title": "Heat"}',
        ),
        (
            "nested_history.jsonl",
            '{"context": "User: hi", "targets": ["Alien"], "history": [null]}\n',
            "line 1, field 'history': item 1 is null",
        ),
    ],
)
def test_a_title_that_is_not_text_is_refused_with_file_and_line(tmp_path, name, content, where):
    """Issue 24, item 14: `[["Heat"]]` used to become the title "['Heat']" and be linked."""
    (tmp_path / "custom").mkdir()
    path = tmp_path / "custom" / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_custom(path)
    assert str(info.value).startswith(f"{path}, {where}, not a title: write each title")
    # the real command: one line, exit 2
    result = subprocess.run(
        [sys.executable, "-m", "rar", "data", "stats", "--data-dir", str(tmp_path),
         "--dataset", "custom"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: {info.value}"


def test_whole_number_titles_are_kept(tmp_path):
    path = tmp_path / "numbers.jsonl"
    path.write_text('{"context": "User: war films?", "targets": [1917, "Dunkirk"]}\n')
    [dialogue] = load_custom(path)
    assert [m.title for m in dialogue.samples[0].targets] == ["1917", "Dunkirk"]
