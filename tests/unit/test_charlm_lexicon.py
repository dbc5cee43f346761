"""Lexicon lines mixed into the character LM's training text (models/training/charlm.py)."""

from __future__ import annotations

import pytest

from models.training.charlm import lexicon_lines, parse_shares
from sparkhtr.core.alphabet import DEFAULT_CHARACTERS, Alphabet

LEXICONS = {
    "en": [("the", 5.0), ("garden", 0.5), ("arboretum", 0.01), ("naïve", 0.2)],
    "fr": [("le", 4.0), ("testament", 0.3), ("légué", 0.1), ("x\u0301y", 0.1)],
}


def test_lines_are_deterministic_and_split_by_share() -> None:
    alphabet = Alphabet(DEFAULT_CHARACTERS)
    first = lexicon_lines(LEXICONS, {"en": 0.25, "fr": 0.75}, 40, alphabet, words_per_line=5, seed=3)
    assert first == lexicon_lines(LEXICONS, {"en": 0.25, "fr": 0.75}, 40, alphabet, words_per_line=5, seed=3)
    assert first != lexicon_lines(LEXICONS, {"en": 0.25, "fr": 0.75}, 40, alphabet, words_per_line=5, seed=4)
    assert len(first) == 40
    assert all(len(line.split(" ")) == 5 for line in first)
    english = {w.lower() for line in first[:10] for w in line.split()}
    french = {w.lower() for line in first[10:] for w in line.split()}
    assert english <= {"the", "garden", "arboretum", "naïve"}
    assert french <= {"le", "testament", "légué"}


def test_words_outside_the_alphabet_are_left_out() -> None:
    alphabet = Alphabet("abcdefghijklmnopqrstuvwxyz ")
    lines = lexicon_lines(LEXICONS, {"fr": 1.0}, 50, alphabet, capitalize=0.0)
    assert {w for line in lines for w in line.split()} <= {"le", "testament"}
    with pytest.raises(ValueError, match="fits the alphabet"):
        lexicon_lines({"fr": [("é", 1.0)]}, {"fr": 1.0}, 5, alphabet)


def test_gamma_flattens_towards_rare_words() -> None:
    alphabet = Alphabet(DEFAULT_CHARACTERS)

    def share_of_the(gamma: float) -> float:
        words = [w for line in lexicon_lines(LEXICONS, {"en": 1.0}, 400, alphabet, gamma=gamma, capitalize=0.0)
                 for w in line.split()]
        return words.count("the") / len(words)

    assert share_of_the(1.0) > share_of_the(0.5) > share_of_the(0.0)
    assert abs(share_of_the(0.0) - 0.25) < 0.05  # gamma 0: every word alike


def test_capitalised_words_appear_when_asked() -> None:
    lines = lexicon_lines(LEXICONS, {"en": 1.0}, 100, Alphabet(DEFAULT_CHARACTERS), capitalize=0.5)
    words = [w for line in lines for w in line.split()]
    assert any(w[0].isupper() for w in words) and any(w[0].islower() for w in words)


def test_parse_shares() -> None:
    assert parse_shares("en:1,fr:2") == pytest.approx({"en": 1 / 3, "fr": 2 / 3})
    for bad in ("en:0,fr:0", "en:-1,fr:2"):
        with pytest.raises(ValueError):
            parse_shares(bad)
