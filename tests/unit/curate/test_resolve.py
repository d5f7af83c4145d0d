"""Name normalisation and track resolution: the variations account data and other sources disagree on."""

from __future__ import annotations

import pytest

from tunelake.curate.resolve import Resolver
from tunelake.sources.catalog import surrogate
from tunelake.sources.names import is_surrogate, name_key, normalize, surrogate_id


@pytest.mark.parametrize("a,b", [
    ("Beyoncé", "BEYONCE"),
    ("Make It Better (feat. Smokey Robinson)", "make it better"),
    ("Make It Better [with Smokey Robinson]", "Make it Better"),
    ("Song ft. Someone", "song"),
    ("Song featuring Someone Else", "Song"),
    ("Simon & Garfunkel", "simon and garfunkel"),
    ("Don’t  Stop", "don t stop"),
    ("  spaced   out ", "Spaced Out"),
])
def test_equivalent_names_normalise_equal(a, b):
    assert normalize(a) == normalize(b)


def test_different_names_stay_different_and_non_latin_survive():
    assert normalize("Hello") != normalize("Hallo")
    assert normalize("東京") == "東京"
    assert normalize("(feat. X)") != ""  # a title that is only a credit keeps its text
    assert normalize(None) == "" and normalize("") == ""


def test_surrogates_are_stable_22_chars_and_recognisable():
    s = surrogate_id("track", "Beyoncé", "Halo (feat. X)")
    assert s == surrogate_id("track", "BEYONCE", "halo") and len(s) == 22 and s[0] == "x"
    assert is_surrogate(s) and is_surrogate(surrogate("artist", "x"))
    assert not is_surrogate("7CRPXJt3IVC7V0VcM0PSQi") and not is_surrogate(None)


def test_resolver_prefers_the_most_played_id_then_the_smallest():
    r = Resolver()
    r.add_tracks(["B" * 22, "A" * 22, "C" * 22], ["Artist", "Artist", "Other"], ["Song", "Song", "Song"], [5, 2, 9])
    ids, ok = r.resolve_tracks(["artist", "ARTIST", "Nobody"], ["Song (feat. Z)", "song", "Song"])
    assert ids.to_pylist()[:2] == ["B" * 22, "B" * 22]
    assert ok.to_pylist() == [True, True, False]
    assert ids.to_pylist()[2] == surrogate_id("track", "Nobody", "Song")
    tie = Resolver()
    tie.add_tracks(["Z" * 22, "Y" * 22], ["a", "a"], ["s", "s"], [1, 1])
    assert tie.resolve_tracks(["a"], ["s"])[0].to_pylist() == ["Y" * 22]


def test_resolver_never_matches_on_half_a_key():
    r = Resolver()
    r.add_tracks(["A" * 22], [None], ["Song"])
    assert r.resolve_tracks([None], ["Song"])[1].to_pylist() == [False]
    assert name_key("a", "b") != name_key("a b", "")


def test_episodes_resolve_by_show_and_name():
    r = Resolver()
    r.add_episodes(["E" * 22], ["The Show"], ["Episode 1: Start"])
    ids, ok = r.resolve_episodes(["the show", "the show"], ["Episode 1 - Start", "Episode 2"])
    assert ids.to_pylist()[0] == "E" * 22 and ok.to_pylist() == [True, False]
