"""Building LMs with KenLM's lmplz/build_binary (``make kenlm`` builds them; ``make test`` runs it first)."""

import json

import pytest
import torch

from asr.beam import BeamOptions, BeamSearchDecoder
from asr.errors import AsrError
from asr.lm import LMConfig, build, find_kenlm
from asr.text import Vocabulary
from lm_fixtures import emissions, spell

try:
    find_kenlm("lmplz")
    find_kenlm("build_binary")
    HAVE_KENLM = True
except AsrError:
    HAVE_KENLM = False
needs_kenlm = pytest.mark.skipif(not HAVE_KENLM, reason="KenLM programs not built: run 'make kenlm'")

TEXT = ["The cat sat on the mat.", "The cat ate the rat!", "A dog sat on the log;", "The cat sat down.",
        "Café society — naïve", "le château fort", "日本語"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(TEXT * 3) + "\n", encoding="utf-8")
    return path


@needs_kenlm
def test_word_lm_and_lexicon_from_normalised_text(tmp_path, text_file):
    info = build([text_file], tmp_path / "lm", LMConfig(order=3))
    assert (tmp_path / "lm" / "lm.bin").read_bytes().startswith(b"mmap lm http://kheafield.com/code")
    lexicon = (tmp_path / "lm" / "lexicon.txt").read_text().splitlines()
    words = [line.split()[0] for line in lexicon]
    assert "cat" in words and "cafe" in words and "naive" in words  # the training normaliser ran
    assert "the" in words and "The" not in words and not any("." in w for w in words)
    assert "cat c a t |" in lexicon
    assert info["dropped_sentences"] == 3  # the Japanese line cannot be spelled in a-z
    assert json.loads((tmp_path / "lm" / "lm.json").read_text())["config"]["order"] == 3


@needs_kenlm
def test_word_lm_from_manifest_decodes(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": "x.wav", "duration": 1.0, "text": t}) + "\n"
                                for t in ["the cat sat", "the cat ate", "a dog sat"] * 5))
    build([manifest], tmp_path / "lm", LMConfig(order=2))
    decoder = BeamSearchDecoder(Vocabulary(), str(tmp_path / "lm" / "lm.bin"), str(tmp_path / "lm" / "lexicon.txt"),
                                BeamOptions(beam_size=20, lm_weight=1.0))
    lp = emissions(spell("the ca") + [{"p": 0.52, "t": 0.47}, {"": 0.99}])  # 'cap' is not even a word here
    assert decoder.decode(lp[None], torch.tensor([lp.shape[0]]))[0].text == "the cat"


@needs_kenlm
def test_char_lm_decodes_lexicon_free(tmp_path, text_file):
    info = build([text_file], tmp_path / "clm", LMConfig(order=5, unit="char"))
    assert info["lexicon"] is None and not (tmp_path / "clm" / "lexicon.txt").exists()
    decoder = BeamSearchDecoder(Vocabulary(), str(tmp_path / "clm" / "lm.bin"), None,
                                BeamOptions(beam_size=20, lm_weight=1.0))
    lp = emissions(spell("the ca") + [{"p": 0.52, "t": 0.47}, {"": 0.99}])
    assert decoder.decode(lp[None], torch.tensor([lp.shape[0]]))[0].text == "the cat"


@needs_kenlm
def test_tiny_corpus_needs_discount_fallback(tmp_path):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("one two three\n")
    with pytest.raises(AsrError, match="lmplz failed"):
        build([tiny], tmp_path / "a", LMConfig(order=3, discount_fallback=False))
    build([tiny], tmp_path / "b", LMConfig(order=3))
    assert (tmp_path / "b" / "lm.bin").is_file()


def test_bad_build_requests(tmp_path):
    with pytest.raises(AsrError, match="no such text file"):
        build([tmp_path / "absent.txt"], tmp_path / "lm")
    with pytest.raises(AsrError, match="order must be 1..6"):
        build([tmp_path / "absent.txt"], tmp_path / "lm", LMConfig(order=9))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n...\n")
    if HAVE_KENLM:
        with pytest.raises(AsrError, match="no usable sentences"):
            build([empty], tmp_path / "lm")
