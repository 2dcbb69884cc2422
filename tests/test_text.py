import pytest

from asr.text import BLANK, Vocabulary, normalize


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hello, World!", "hello world"),
        ("  Don\u2019t   STOP\u2014believin'!", "don't stop believin"),
        ("Caf\u00e9 na\u00efve", "cafe naive"),
        ("'quoted' words", "quoted words"),
        ("well-known; semi:colon", "well known semi colon"),
        ("rock 'n' roll", "rock n roll"),
        ("...", ""),
        ("tab\tand\nnewline", "tab and newline"),
        ("digits 42 stay", "digits 42 stay"),  # left for the vocabulary check to report
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_normalize_is_idempotent():
    for s in ["Hello, World!", "it's the end", "A--B"]:
        assert normalize(normalize(s)) == normalize(s)


def test_vocabulary_round_trip():
    vocab = Vocabulary()
    ids = vocab.encode("it's a test")
    assert BLANK not in ids
    assert all(1 <= i < len(vocab) for i in ids)
    assert vocab.decode(ids) == "it's a test"
    assert len(vocab) == 29


def test_vocabulary_unknown_and_encode_error():
    vocab = Vocabulary()
    assert vocab.unknown("abc 42 \u00df") == {"4", "2", "\u00df"}
    with pytest.raises(KeyError):
        vocab.encode("x9")


def test_decode_skips_blank():
    vocab = Vocabulary()
    assert vocab.decode([BLANK, *vocab.encode("hi"), BLANK]) == "hi"
