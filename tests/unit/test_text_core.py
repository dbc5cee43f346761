import numpy as np
import pytest

from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet
from sparkhtr.core.ctc import greedy_decode
from sparkhtr.core.lines import normalize_line
from sparkhtr.core.metrics import cer, edit_counts, order_free_edit_counts, wer


def test_alphabet_round_trip_and_normalisation():
    alphabet = Alphabet(DEFAULT_CHARACTERS)
    text = "Le 3 août 1916, j’écris à Œdipe: «£3 10s»."
    assert alphabet.normalize(text) == text
    assert alphabet.decode(alphabet.encode(text)) == text
    assert alphabet.normalize("ſon ⋎ → Ĵean  ć") == "son Jean c"
    assert alphabet.dropped(["a⋎b→"]) == {"⋎": 1, "→": 1}
    with pytest.raises(ValueError):
        Alphabet("aa")


def _one_hot(path, classes=4, p=0.9):
    out = np.full((1, len(path), classes), (1 - p) / (classes - 1))
    for t, c in enumerate(path):
        out[0, t, c] = p
    return np.log(out)


def test_greedy_decode_collapses_repeats_and_blanks():
    logp = _one_hot([1, 1, 0, 1, 2, 2, 0, 0, 3])
    [(classes, confidence)] = greedy_decode(logp, np.array([9]))
    assert classes == [1, 1, 2, 3]
    assert confidence == pytest.approx(0.9)


def test_greedy_decode_respects_lengths_and_empty():
    logp = np.concatenate([_one_hot([1, 2, 3, 3]), _one_hot([0, 0, 0, 0])])
    out = greedy_decode(logp, np.array([2, 4]))
    assert out[0][0] == [1, 2]
    assert out[1][0] == []
    assert out[1][1] == pytest.approx(0.9)
    with pytest.raises(ValueError):
        greedy_decode(logp[0], np.array([4]))


def test_metrics():
    assert cer(["abc"], ["abc"]) == 0.0
    assert cer(["abc", "de"], ["abd", ""]) == pytest.approx(3 / 5)
    assert wer(["a b c"], ["a x c d"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        cer(["a"], [])


def test_order_free_edit_counts_pair_lines_whatever_their_order():
    ref = ["take last directions", "to go and see him", "cough and Mrs S"]
    hyp = ["to go and see him", "take last directions.", "cough & Mrs S"]
    # in reading order the first two lines cost far more than the one comma
    assert edit_counts(["\n".join(ref)], ["\n".join(hyp)])[0] > 10
    assert order_free_edit_counts(ref, hyp) == (1 + 3, sum(map(len, ref)))
    # a line found where the truth has none (a stamp) and a missed line count whole
    assert order_free_edit_counts(["abc"], ["abc", "XYZW"]) == (4, 3)
    assert order_free_edit_counts(["abc", "defgh"], ["abc"]) == (5, 8)
    assert order_free_edit_counts([], ["ab"]) == (2, 0) and order_free_edit_counts(["ab"], []) == (2, 2)
    # a pairing costs its edits (3 substitutions), less than deleting one line and inserting the other
    assert order_free_edit_counts(["abc"], ["xyz"]) == (3, 3)
    # the cheapest pairs first: "abcd" goes with its equal, not with the near miss
    assert order_free_edit_counts(["abcd", "abce"], ["abce", "abcd"]) == (0, 8)
    assert order_free_edit_counts(ref, ref) == (0, sum(map(len, ref)))


def test_normalize_line_maps_paper_to_zero_and_ink_to_one():
    faded = np.full((64, 200), 200, np.uint8)
    faded[20:40, 10:190] = 150  # faint pencil
    dark = np.full((64, 200), 250, np.uint8)
    dark[20:40, 10:190] = 10
    for image in (faded, dark):
        x = normalize_line(image, 32)
        assert x.shape == (32, 100)
        assert x.min() == 0.0 and x.max() == pytest.approx(1.0)
    assert normalize_line(np.full((64, 400), 255, np.uint8), 32, max_width=50).shape == (32, 50)
