"""`ssbm-bench corpus show`: utterance ids, words with times, and which models recognise them.

Real corpora throughout: the committed synthetic corpus, a folder corpus
built in tmp_path from two of its utterances (WAV, transcript, JSON word
times: no forced alignment), and a results store written by a real
two-utterance pocketsphinx run (about 15 s) for the eligibility column.
"""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile as sf

from e2e_helpers import RECOGNISED, cli, write_suite
from ssbm_bench.cli import build_parser, main
from ssbm_bench.harness.store import ResultStore

#: a synthetic utterance pocketsphinx does not recognise fully when clean (it hears "can you switch ... clamps")
NOT_RECOGNISED = "rms_h01_01"
README = (__import__("pathlib").Path(__file__).resolve().parent.parent / "README.md").read_text()


def show(capsys, *args):
    code = main(["corpus", "show", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def by_id(listing: dict) -> dict:
    return {u["id"]: u for u in listing["utterances"]}


# --------------------------------------------------------------------------- the synthetic corpus


def test_synthetic_lists_a_known_id_with_its_words_and_times(capsys):
    code, out, err = show(capsys, "synthetic")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("corpus synthetic: 100 utterances, ") and "content digest " in lines[0]
    row = next(i for i, line in enumerate(lines) if line.startswith(RECOGNISED[0] + " "))
    text = " ".join(lines[row:row + 3])  # the words wrap under their column
    for token in ("0:the ", "1:boy ", "4:when ", "5:the ", "7:rose "):
        assert token in text, text
    assert lines[-1].startswith("explain one word: ssbm-bench explain --corpus synthetic --utterance ID --word")

    code, out, _ = show(capsys, "synthetic", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["count"] == 100 and len(listing["utterances"]) == 100 and listing["store"] is None
    utt = by_id(listing)[RECOGNISED[0]]
    assert [(w["index"], w["text"]) for w in utt["words"]] == list(enumerate(
        ["the", "boy", "was", "there", "when", "the", "sun", "rose"]))
    assert all(0 <= w["start"] <= w["end"] <= utt["seconds"] for w in utt["words"])
    assert utt["times_source"] == "synthesiser"


def test_corpus_parameters_are_read_as_toml(capsys):
    code, out, _ = show(capsys, "synthetic", "--param", "limit=3", "--param", 'voices="awb"', "--json")
    listing = json.loads(out)
    assert code == 0 and listing["params"] == {"limit": 3, "voices": "awb"}
    assert [u["id"] for u in listing["utterances"]] == ["awb_h01_01", "awb_h01_02", "awb_h01_03"]


@pytest.mark.parametrize("args, fragments", [
    (["synthetc"], ["unknown corpus 'synthetc'; known corpora: ", "folder", "synthetic"]),
    (["folder", "--param", "pth=/x"], ["--param: corpus 'folder' has no parameter 'pth' (did you mean 'path'?); "
                                       "its parameters: aligner, label_fields, path, strict"]),
    (["folder"], ["corpus 'folder' needs a `path`", "(corpus 'folder' takes --param aligner, label_fields, path, "
                                                    "strict)"]),
    (["synthetic", "--param", "limit=many"], ["--param: corpus 'synthetic' parameter 'limit' must be int | None"]),
    (["synthetic", "--param", "limit"], ["--param: expected key=value, got 'limit'"]),
    (["synthetic", "--db", "no/such.sqlite"], ["results store no/such.sqlite: not found"]),
])
def test_bad_names_and_parameters_are_named_without_a_traceback(capsys, args, fragments):
    code, out, err = show(capsys, *args)
    assert code == 2 and out == "" and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_corpus_list_and_explain_help_point_to_corpus_show():
    # in a process of its own: `corpus list` opens every corpus, and this one's forced alignments (librivox,
    # from the user's cache) should not be left in the test process's memory for other tests to find
    assert "`ssbm-bench corpus show NAME [--param key=value ...]` lists" in cli("corpus", "list").stdout
    sub = build_parser()._subparsers._group_actions[0].choices
    assert "`ssbm-bench corpus show CORPUS`" in " ".join(sub["explain"].format_help().split())


# --------------------------------------------------------------------------- a folder of the user's recordings


def test_a_folder_corpus_is_listed_with_its_ids_and_its_path_as_given(tmp_path, capsys, monkeypatch):
    from ssbm_bench.plugins import get_registry

    synth = {u.id: u for u in get_registry().create("corpus", "synthetic", limit=8).utterances()}
    root = tmp_path / "mine"
    for stem, src in (("alice/take1", synth["awb_h01_01"]), ("bob", synth["kal16_h01_01"])):
        (root / stem).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / f"{stem}.wav"), src.waveform, src.sample_rate, subtype="PCM_16")
        (root / f"{stem}.txt").write_text(src.text + "\n")
        (root / f"{stem}.json").write_text(json.dumps([{"word": w.text, "start": w.start, "end": w.end}
                                                       for w in src.words]))
    monkeypatch.chdir(tmp_path)  # a relative path stays relative in what is shown
    code, out, err = show(capsys, "folder", "--param", "path=mine")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("corpus folder[path=mine]: 2 utterances, ")
    rows = [line for line in lines[2:-1] if not line.startswith(" ")]  # a row's words wrap onto indented lines
    assert [row.split()[0] for row in rows] == ["alice/take1", "bob"]
    assert "0:the " in rows[0] and "1:birch " in rows[0]
    assert "--corpus folder --corpus-param path=mine --utterance ID" in lines[-1]

    code, out, _ = show(capsys, "folder", "--param", "path=mine", "--json")
    listing = json.loads(out)
    assert listing["params"] == {"path": "mine"} and list(by_id(listing)) == ["alice/take1", "bob"]
    assert [w["text"] for w in by_id(listing)["bob"]["words"]] == [w.text for w in synth["kal16_h01_01"].words]

    (root / "broken.wav").write_bytes(b"RIFF0000WAVE")  # a bad file is skipped, and the listing says why
    (root / "broken.txt").write_text("nothing\n")
    code, out, err = show(capsys, "folder", "--param", "path=mine")
    assert code == 0 and "skipped 1 file(s), not in the corpus:" in out and "broken.wav" in out


# --------------------------------------------------------------------------- eligibility from a results store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real run: pocketsphinx decodes both utterances clean; one is recognised fully and becomes a cell."""
    d = tmp_path_factory.mktemp("show")
    suite = write_suite(d / "show.toml", "show", ["random"], limit=2, utterances=[RECOGNISED[0], NOT_RECOGNISED],
                        levels_db=(0.0,))
    db = d / "show.sqlite"
    cli("run", str(suite), "--db", str(db), "--no-progress")
    return db


def test_eligibility_per_model_from_the_stores_clean_transcripts(store, capsys):
    code, out, err = show(capsys, "synthetic", "--db", str(store), "--json")
    assert code == 0, err
    listing = json.loads(out)
    models = listing["store"]["models"]
    assert [(m["label"], m["kind"]) for m in models] == [("pocketsphinx", "transcribe")]
    items = by_id(listing)
    yes, no = items[RECOGNISED[0]]["clean"]["pocketsphinx"], items[NOT_RECOGNISED]["clean"]["pocketsphinx"]
    assert yes["eligible"] is True and yes["hypothesis"] == ["the", "boy", "was", "there", "when", "the", "sun", "rose"]
    assert no["eligible"] is False and 0 < sum(no["correct"]) < len(no["correct"]) == 8
    assert items["awb_h01_01"]["clean"] == {"pocketsphinx": None}  # not in the suite: never decoded

    code, out, _ = show(capsys, "synthetic", "--db", str(store))
    lines = out.splitlines()
    assert "clean transcripts of 1 model(s); yes = recognised fully when clean" in lines[1]
    assert lines[2].split()[:3] == ["ID", "SECONDS", "pocketsphinx"]
    row = {line.split()[0]: line.split() for line in lines[3:] if line and not line.startswith(" ")}
    assert row[RECOGNISED[0]][2] == "yes"
    assert row[NOT_RECOGNISED][2:4] == ["no", f"{sum(no['correct'])}/8"]
    assert row["awb_h01_01"][2] == "-"


def test_a_model_no_cell_names_is_shown_by_its_key(store, tmp_path, capsys):
    """Clean transcripts of a model none of whose utterances became a cell: the store has no label for its key."""
    db = tmp_path / "copy.sqlite"
    shutil.copy(store, db)
    with ResultStore(db) as s:
        digest = s.conn.execute("SELECT corpus_digest FROM clean LIMIT 1").fetchone()[0]
        s.put_clean("00ff00ff00ff00ff", digest, NOT_RECOGNISED, ["the"], [True] + [False] * 7)
    code, out, _ = show(capsys, "synthetic", "--db", str(db), "--json")
    listing = json.loads(out)
    assert [m["shown"] for m in listing["store"]["models"]] == ["pocketsphinx", "model key 00ff00ff00ff00ff"]
    assert by_id(listing)[NOT_RECOGNISED]["clean"]["model key 00ff00ff00ff00ff"]["eligible"] is False


def test_a_store_without_this_corpus_says_so(store, capsys):
    code, out, _ = show(capsys, "synthetic", "--param", 'voices="awb"', "--db", str(store))
    assert code == 0  # another selection of the corpus: another content digest, nothing stored for it
    assert "no clean transcripts of this corpus content (digest " in out.splitlines()[1]
    assert "it holds those of 1 other corpus digest(s)" in out


# --------------------------------------------------------------------------- the README says what --help says


def test_the_readme_command_listing_is_true_to_help():
    block = README.split("## The command line", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    sub = build_parser()._subparsers._group_actions[0].choices
    show_parser = sub["corpus"]._subparsers._group_actions[0].choices["show"]
    for name, parser in (("corpus show", show_parser), ("explain", sub["explain"])):
        start = block.index(f"ssbm-bench {name} ")
        entry = block[start:block.find("\nssbm-bench ", start)]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in entry, f"`ssbm-bench {name} --help` has {flag}, the README's listing does not"
