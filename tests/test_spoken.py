import pytest

from asr.corpora.spoken import non_words, spoken
from asr.text import normalize

CASES = [
    ("I have 42 apples...", "i have forty two apples"),
    ("In 1999 I paid £5 for the 3rd one -- 50%!",
     "in nineteen ninety nine i paid five pounds for the third one fifty percent"),
    ("The 1990s were 2.5 times better", "the nineteen nineties were two point five times better"),
    ("It costs $1.", "it costs one dollar"),
    ("(laughs) Very *FUNNY*, Joe.", "very funny joe"),
    ("Well [pause] I think so.", "well i think so"),
    ("Room 101, please", "room one hundred and one please"),
    ("Oh, hello there", "oh hello there"),
    ("Doctor Ironstein's Super Soldier Treatment^_.", "doctor ironstein's super soldier treatment"),
    ("<hack> Excuse me.", "excuse me"),
]


@pytest.mark.parametrize("line,expected", CASES)
def test_lines_become_the_words_a_speaker_says(line, expected):
    text, reason = spoken(line)
    assert reason == "" and normalize(text) == expected


@pytest.mark.parametrize("line,reason", [
    ("*cough*", "stage direction only"), ("(sighs)", "stage direction only"), ("...", "stage direction only"),
    ("HIC! Another drink, barman!", "sound with no spelling"), ("Aaaargh!", "sound with no spelling"),
    ("Hmm. Let me think.", "sound with no spelling"), ("", "empty"),
    ("@@ I think I'm in love @@", "sung"), ("&#($!!, he got away!", "censored word"),
])
def test_lines_that_cannot_be_trusted_as_transcripts_are_left_out_with_the_reason(line, reason):
    assert spoken(line) == (None, reason)


def test_non_words_are_the_unspellable_sounds_only():
    assert non_words("Nooo! Hic, brrr... well then") == ["nooo", "hic", "brrr"]
    assert non_words("Good morning, officer") == []


def test_a_test_set_keeps_sounds_songs_and_oaths_as_written():
    assert spoken("YOUUU...UNCLE DESIDERIOOOO!!", strict=False) == ("YOUUU UNCLE DESIDERIOOOO!!", "")
    assert spoken("YOU...PIANIST...!!!!") == ("YOU PIANIST !!!!", "")  # "!!!!" is no censored word
    assert spoken("(sighs)", strict=False) == (None, "stage direction only")
