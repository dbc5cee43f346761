"""Character n-gram LM and CTC beam search: probabilities, persistence, decoding, the recogniser's decoder."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from sparkhtr.core.ctc import beam_decode, greedy_decode
from sparkhtr.core.lm import EOS, CharNgramLM
from sparkhtr.core.recognize import BeamSettings, LineRecognizer, recognizer_ref
from sparkhtr.errors import ConfigError, ModelError
from sparkhtr.registry import read_manifest
from tests.helpers.tiny_model import add_language_model, blob_line, make_tiny_model_dir

LETTERS = "abcdefghijklmnopqrstuvwxyz "


def _log(frames: list[dict[int, float]], classes: int) -> np.ndarray:
    """log_probs[1, T, classes] from per-frame {class: probability}; the rest shares what is left."""
    out = np.zeros((1, len(frames), classes))
    for t, probs in enumerate(frames):
        rest = (1.0 - sum(probs.values())) / (classes - len(probs))
        row = np.full(classes, rest)
        for c, p in probs.items():
            row[c] = p
        out[0, t] = np.log(np.maximum(row, 1e-12))
    return out


@pytest.mark.parametrize("smoothing", ["kneser-ney", "witten-bell"])
def test_distributions_sum_to_one_for_seen_and_unseen_histories(smoothing):
    lm = CharNgramLM.train(["the cat", "the hat", "a theme"], LETTERS, order=4, smoothing=smoothing)
    for history in ["", "th", "the c", "zzzq", "qqqqqqq", "§ü"]:
        assert np.exp(lm.log_probs(history)).sum() == pytest.approx(1.0)
    assert len(lm.symbols) == len(LETTERS) + 1 and lm.symbols[-1] == EOS


def test_kneser_ney_lower_orders_count_contexts_not_occurrences():
    # "k" follows many different characters, "z" always follows "a": after an unseen context
    # Kneser-Ney prefers the character seen in more contexts even though "z" is more frequent
    lines = ["az az az az az az", "bk ck dk ek"]
    kn = CharNgramLM.train(lines, LETTERS, order=2, smoothing="kneser-ney")
    wb = CharNgramLM.train(lines, LETTERS, order=2, smoothing="witten-bell")
    unseen = kn.log_probs("q")
    assert unseen[kn.index["k"]] > unseen[kn.index["z"]]
    assert wb.log_probs("q")[wb.index["z"]] > wb.log_probs("q")[wb.index["k"]]


def test_smoothing_arguments_are_checked():
    with pytest.raises(ValueError, match="smoothing"):
        CharNgramLM.train(["ab"], "ab", order=2, smoothing="laplace")
    with pytest.raises(ValueError, match="discount"):
        CharNgramLM.train(["ab"], "ab", order=2, discount=1.5)


def test_seen_continuations_are_likelier_and_line_ends_are_modelled():
    lm = CharNgramLM.train(["the cat", "the hat"] * 5, LETTERS, order=4)
    after = lm.log_probs("th")
    assert after[lm.index["e"]] > after[lm.index["x"]] + 2
    assert lm.log_probs("the cat")[lm.index[EOS]] > lm.log_probs("the ca")[lm.index[EOS]]
    assert lm.score("the cat") > lm.score("tha cet")
    assert lm.perplexity(["the cat"]) < lm.perplexity(["xqz jvk"])


def test_characters_outside_the_alphabet_are_skipped_in_training():
    lm = CharNgramLM.train(["a§b"], "ab", order=2)
    assert lm.followers("a") == {"b": 1}
    assert lm.followers("z") == {}


def test_save_load_round_trip_is_exact_and_deterministic(tmp_path):
    lm = CharNgramLM.train(["le chat", "les chiens", "the dog"], LETTERS, order=5)
    lm.save(tmp_path / "a.npz")
    lm.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = CharNgramLM.load(tmp_path / "a.npz")
    assert (loaded.smoothing, loaded.discount) == ("kneser-ney", 0.9)
    for history in ["", "le c", "the do", "xyz"]:
        np.testing.assert_array_equal(loaded.log_probs(history), lm.log_probs(history))


def test_format_1_gzipped_json_counts_still_load_with_the_same_probabilities(tmp_path):
    lines = ["le chat", "les chiens", "the dog"]
    lm = CharNgramLM.train(lines, LETTERS, order=4)
    counts: list[dict] = [{} for _ in range(4)]
    for line in lines:
        text = "\x02" * 3 + line + EOS
        for i in range(3, len(text)):
            for k in range(4):
                followers = counts[k].setdefault(text[i - k:i], {})
                followers[text[i]] = followers.get(text[i], 0) + 1
    doc = {"format": "sparkhtr-char-ngram/1", "order": 4, "characters": LETTERS, "smoothing": "kneser-ney",
           "discount": 0.9, "counts": counts}
    with gzip.open(tmp_path / "old.json.gz", "wt", encoding="utf-8") as fh:
        json.dump(doc, fh)
    old = CharNgramLM.load(tmp_path / "old.json.gz")
    for history in ["", "le c", "the do", "xyz"]:
        np.testing.assert_array_equal(old.log_probs(history), lm.log_probs(history))


@pytest.mark.parametrize("content", [b"", b"not a model", b"PK\x03\x04 truncated zip"])
def test_load_refuses_files_that_are_not_models(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a sparkhtr character n-gram"):
        CharNgramLM.load(path)


def test_load_refuses_an_npz_of_something_else(tmp_path):
    np.savez(tmp_path / "other.npz", meta=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(ValueError, match="not a sparkhtr character n-gram"):
        CharNgramLM.load(tmp_path / "other.npz")
    np.savez(tmp_path / "arrays.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a sparkhtr character n-gram"):
        CharNgramLM.load(tmp_path / "arrays.npz")


def test_load_refuses_an_inconsistent_table(tmp_path):
    CharNgramLM.train(["le chat", "the dog"], LETTERS, order=3).save(tmp_path / "lm.npz")
    with np.load(tmp_path / "lm.npz") as archive:
        arrays = dict(archive)
    arrays["starts2"] = arrays["starts2"][::-1].copy()
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="inconsistent n-gram table"):
        CharNgramLM.load(tmp_path / "bad.npz")
    arrays = dict(np.load(tmp_path / "lm.npz"))
    arrays["ids1"] = arrays["ids1"] + 500
    np.savez(tmp_path / "range.npz", **arrays)
    with pytest.raises(ValueError, match="out of range"):
        CharNgramLM.load(tmp_path / "range.npz")


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "x.json.gz"
    with gzip.open(path, "wt") as fh:
        json.dump({"format": "something-else"}, fh)
    with pytest.raises(ValueError, match="not a sparkhtr character n-gram"):
        CharNgramLM.load(path)


def test_beam_search_sums_paths_where_greedy_takes_one():
    # two frames, each 'a' 0.4 / blank 0.6: greedy reads "" (0.36), but "a" has 0.64 over its paths
    logp = _log([{0: 0.6, 1: 0.4}, {0: 0.6, 1: 0.4}], 3)
    assert greedy_decode(logp, np.array([2]))[0][0] == []
    assert beam_decode(logp, np.array([2]), "ab", beta=0.0)[0][0] == "a"


def test_beam_search_keeps_repeated_characters_apart_only_across_a_blank():
    letters = "ab"
    double = _log([{1: 0.9}, {0: 0.9}, {1: 0.9}], 3)
    held = _log([{1: 0.9}, {1: 0.9}, {0: 0.9}], 3)
    assert beam_decode(double, np.array([3]), letters, beta=0.0)[0][0] == "aa"
    assert beam_decode(held, np.array([3]), letters, beta=0.0)[0][0] == "a"


def test_the_language_model_fixes_an_ambiguous_character():
    lm = CharNgramLM.train(["the the the", "then there"] * 3, LETTERS, order=4)
    cls = {c: i + 1 for i, c in enumerate(LETTERS)}
    classes = len(LETTERS) + 1
    # "th?" where the frame prefers 'c' (0.5) over 'e' (0.4)
    logp = _log([{cls["t"]: 0.9}, {0: 0.9}, {cls["h"]: 0.9}, {0: 0.9}, {cls["c"]: 0.5, cls["e"]: 0.4}], classes)
    assert beam_decode(logp, np.array([5]), LETTERS, None, beta=0.0)[0][0] == "thc"
    text, confidence = beam_decode(logp, np.array([5]), LETTERS, lm, alpha=1.0, beta=0.0)[0]
    assert text == "the"
    assert confidence == pytest.approx(greedy_decode(logp, np.array([5]))[0][1])


def test_frames_past_the_length_are_ignored():
    logp = _log([{1: 0.9}, {0: 0.9}, {2: 0.9}], 3)
    assert beam_decode(logp, np.array([1]), "ab")[0][0] == "a"


def test_beam_decode_refuses_mismatched_shapes_and_alphabets():
    lm = CharNgramLM.train(["ab"], "ab", order=2)
    with pytest.raises(ValueError, match="classes"):
        beam_decode(np.zeros((1, 2, 5)), np.array([2]), "ab")
    with pytest.raises(ValueError, match="alphabet"):
        beam_decode(np.zeros((1, 2, 4)), np.array([2]), "abc", lm)
    with pytest.raises(ValueError, match="batch, time, classes"):
        beam_decode(np.zeros((2, 3)), np.array([2]), "ab")


def test_recognizer_beam_decoder_reads_the_manifest_language_model(tmp_path):
    folder = add_language_model(make_tiny_model_dir(tmp_path / "m"), ["a", "aa", "aaa"], alpha=0.3, beta=0.5)
    manifest = read_manifest(folder)
    beam = LineRecognizer(manifest, device="cpu", threads=1, decoder="beam")
    assert (beam.beam.alpha, beam.beam.beta, beam.beam.beam_width) == (0.3, 0.5, 8)
    greedy = LineRecognizer(manifest, device="cpu", threads=1, decoder="greedy")
    lines = [blob_line(k) for k in (1, 3, 2)]
    assert [r.text for r in beam.recognize(lines)] == [r.text for r in greedy.recognize(lines)] == ["a", "aaa", "aa"]
    assert beam.stats.decode_seconds > 0
    assert recognizer_ref(manifest, "beam") == "tiny-ctc@0.0.1+charlm"
    assert recognizer_ref(manifest, "greedy") == "tiny-ctc@0.0.1"
    assert recognizer_ref(manifest) == "tiny-ctc@0.0.1+charlm"  # auto: the model ships an LM
    # another number of beams than the manifest's 8 changes the text: the tables record it
    assert recognizer_ref(manifest, "beam", beam_width=8) == "tiny-ctc@0.0.1+charlm"
    assert recognizer_ref(manifest, "auto", beam_width=4) == "tiny-ctc@0.0.1+charlm:beam4"
    assert recognizer_ref(manifest, "greedy", beam_width=4) == "tiny-ctc@0.0.1"
    assert LineRecognizer(manifest, device="cpu", threads=1).beam is not None


def test_recognizer_decoder_errors(tmp_path):
    folder = make_tiny_model_dir(tmp_path / "m")
    manifest = read_manifest(folder)
    with pytest.raises(ModelError, match="ships no language model"):
        LineRecognizer(manifest, device="cpu", decoder="beam")
    with pytest.raises(ConfigError, match="decoder"):
        LineRecognizer(manifest, device="cpu", decoder="viterbi")
    assert LineRecognizer(manifest, device="cpu", threads=1).beam is None  # auto without an LM: greedy
    assert recognizer_ref(manifest) == "tiny-ctc@0.0.1"
    add_language_model(folder, ["ab"])
    other = make_tiny_model_dir(tmp_path / "other", alphabet="xy")
    (other / "charlm.npz").write_bytes((folder / "charlm.npz").read_bytes())
    spec = json.loads((folder / "manifest.json").read_text())["language_model"]
    doc = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**doc, "language_model": spec}))
    with pytest.raises(ModelError, match="another alphabet"):
        BeamSettings.for_model(read_manifest(other))
    (folder / "charlm.npz").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        BeamSettings.for_model(read_manifest(folder))


def test_bundled_model_ships_a_language_model_over_its_alphabet():
    from sparkhtr.registry import resolve_model

    manifest = resolve_model()
    settings = BeamSettings.for_model(manifest)
    assert settings.language_model is not None and settings.language_model.characters == manifest.alphabet
    assert settings.beam_width > 1 and settings.alpha > 0


def _reference_beam(logp: np.ndarray, characters: str, lm: CharNgramLM, beam_width: int, alpha: float,
                    beta: float) -> str:
    """Plain log-space prefix beam search, every character a candidate, the LM asked with the whole text."""
    beams = {"": (0.0, -np.inf)}
    for row in logp:
        step: dict[str, list[float]] = {}
        for text, (pb, pc) in beams.items():
            total = np.logaddexp(pb, pc)
            entry = step.setdefault(text, [-np.inf, -np.inf])
            entry[0] = np.logaddexp(entry[0], total + row[0])
            if text:
                entry[1] = np.logaddexp(entry[1], pc + row[characters.index(text[-1]) + 1])
            lm_row = lm.log_probs(text)
            for c, char in enumerate(characters):
                source = pb if text and text[-1] == char else total
                new = step.setdefault(text + char, [-np.inf, -np.inf])
                new[1] = np.logaddexp(new[1], source + row[c + 1] + alpha * lm_row[c] + beta)
        beams = dict(sorted(step.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:beam_width])
    return max(beams, key=lambda t: np.logaddexp(*beams[t]) + alpha * lm.log_probs(t)[-1])


def test_beam_search_matches_a_plain_reference_implementation():
    rng = np.random.default_rng(3)
    letters = "abcd "
    lm = CharNgramLM.train(["abc dab", "cab bad", "dad cab abc", "a bc d"], letters, order=4)
    for _ in range(25):
        logits = rng.normal(0, 2.5, (12, len(letters) + 1))
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        fast = beam_decode(logp[None], np.array([12]), letters, lm, beam_width=6, alpha=0.7, beta=0.3,
                           prune=-1e9, max_candidates=len(letters))[0][0]
        assert fast == _reference_beam(logp, letters, lm, 6, 0.7, 0.3)


def test_a_beam_width_overrides_the_manifests(tmp_path, capsys):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from sparkhtr.cli import main
    from sparkhtr.registry import file_sha256
    from sparkhtr.spark.recognizer import worker_recognizer

    folder = add_language_model(make_tiny_model_dir(tmp_path / "m"), ["a", "aa", "aaa"])
    sha = file_sha256(folder / "model.onnx")
    assert worker_recognizer(str(folder), sha, "cpu", 0, 0, "fp32", "beam").beam.beam_width == 8  # the manifest's
    wide = worker_recognizer(str(folder), sha, "cpu", 0, 0, "fp32", "beam", 3)
    assert wide.beam.beam_width == 3 and wide.beam.alpha == 0.5  # the width alone changes
    assert [r.text for r in wide.recognize([blob_line(2)])] == ["aa"]
    assert worker_recognizer(str(folder), sha, "cpu", 0, 0, "fp32", "greedy", 3).beam is None
    manifest = read_manifest(folder)
    assert LineRecognizer(manifest, device="cpu", threads=1, beam_width=5).beam.beam_width == 5  # auto: beam
    with pytest.raises(ConfigError, match="beam_width must not be negative"):
        LineRecognizer(manifest, device="cpu", threads=1, beam_width=-1)
    # the CLI's eval-lines takes it too; a negative width is refused before any model loads
    buf = io.BytesIO()
    Image.fromarray(blob_line(2)).save(buf, "PNG")
    pq.write_table(pa.table({"text": ["aa"], "image": [buf.getvalue()]}), tmp_path / "toy.parquet")
    common = ["eval-lines", str(tmp_path / "toy.parquet"), "--data", str(tmp_path / "none"), "--model", str(folder),
              "--device", "cpu", "--threads", "1", "--decoder", "beam"]
    assert main([*common, "--beam-width", "3"]) == 0
    assert main([*common, "--beam-width", "-1"]) == 2
    assert "--beam-width must not be negative" in capsys.readouterr().err
