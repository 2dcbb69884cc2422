import itertools
import math

import pytest
import torch

from asr.beam import BeamOptions, BeamSearchDecoder, DecodeConfig, lexicon_for
from asr.decode import GreedyDecoder
from asr.errors import AsrError
from asr.lexicon import write_lexicon
from asr.text import Vocabulary
from lm_fixtures import emissions, spell, write_arpa


def one(decoder, lp):
    return decoder.decode(lp[None], torch.tensor([lp.shape[0]]))[0]


def ambiguous_cat_cap():
    """'the ca?' where the last letter is p by a hair: acoustics prefer 'cap', language prefers 'cat'."""
    return emissions(spell("the ca") + [{"p": 0.52, "t": 0.47}, {"": 0.99}])


@pytest.fixture
def lm_dir(tmp_path):
    """A bigram LM in which 'the cat' is far likelier than 'the cap', and its lexicon."""
    write_arpa(tmp_path / "lm.arpa", {"the": -0.5, "cat": -1.0, "cap": -1.0, "sat": -1.0},
               {("<s>", "the"): -0.1, ("the", "cat"): -0.05, ("the", "cap"): -3.0, ("cat", "</s>"): -0.1,
                ("cap", "</s>"): -0.1})
    write_lexicon(tmp_path / "lexicon.txt", ["the", "cat", "cap", "sat"])
    return tmp_path


def test_lm_changes_the_winner_where_acoustics_are_ambiguous(lm_dir):
    lp = ambiguous_cat_cap()
    assert GreedyDecoder(Vocabulary()).decode(lp[None], torch.tensor([lp.shape[0]]))[0].text == "the cap"
    no_lm = BeamSearchDecoder(Vocabulary(), None, str(lm_dir / "lexicon.txt"), BeamOptions(beam_size=20))
    assert one(no_lm, lp).text == "the cap"
    with_lm = BeamSearchDecoder(Vocabulary(), str(lm_dir / "lm.arpa"), str(lm_dir / "lexicon.txt"),
                                BeamOptions(beam_size=20, lm_weight=1.0))
    assert one(with_lm, lp).text == "the cat"


def test_lexicon_forbids_non_words(lm_dir):
    lp = emissions(spell("the c") + [{"s": 0.6, "a": 0.39}, {"": 0.99}, {"t": 0.99}, {"": 0.99}])
    free = BeamSearchDecoder(Vocabulary(), options=BeamOptions(beam_size=20))
    assert one(free, lp).text == "the cst"
    constrained = BeamSearchDecoder(Vocabulary(), None, str(lm_dir / "lexicon.txt"), BeamOptions(beam_size=20))
    assert one(constrained, lp).text == "the cat"


def _collapse(path):
    out = []
    for i, tok in enumerate(path):
        if tok != 0 and (i == 0 or tok != path[i - 1]):
            out.append(tok)
    return tuple(out)


def test_large_beam_equals_exhaustive_search():
    """On {blank, a, b} over 7 frames, the beam's best labelling is the one with the highest total probability."""
    vocab = Vocabulary(" ab")
    torch.manual_seed(3)
    for trial in range(5):
        probs = torch.rand(7, 4) + 0.05
        probs[:, 1] = 1e-12  # the space: keep the search to blank, a, b
        lp = (probs / probs.sum(-1, keepdim=True)).log()
        totals: dict[tuple, float] = {}
        for path in itertools.product([0, 2, 3], repeat=lp.shape[0]):
            score = float(sum(lp[t, k] for t, k in enumerate(path)))
            key = _collapse(path)
            totals[key] = float(torch.logaddexp(torch.tensor(totals.get(key, -math.inf)), torch.tensor(score)))
        best = max(totals, key=totals.get)
        decoder = BeamSearchDecoder(vocab, options=BeamOptions(beam_size=500, beam_threshold=1e9, log_add=True))
        hyp = one(decoder, lp)
        assert hyp.text == vocab.decode(best), trial
        assert hyp.score == pytest.approx(totals[best], abs=1e-3)


def test_nbest_gives_distinct_hypotheses_best_first(lm_dir):
    decoder = BeamSearchDecoder(Vocabulary(), None, str(lm_dir / "lexicon.txt"), BeamOptions(beam_size=20, nbest=3))
    hyp = one(decoder, ambiguous_cat_cap())
    texts = [h.text for h in hyp.alternatives]
    assert texts[:2] == ["the cap", "the cat"] and len(set(texts)) == len(texts)
    scores = [h.score for h in hyp.alternatives]
    assert scores == sorted(scores, reverse=True)


def test_empty_and_silent_input_give_empty_text(lm_dir):
    decoder = BeamSearchDecoder(Vocabulary(), str(lm_dir / "lm.arpa"), str(lm_dir / "lexicon.txt"))
    silent = emissions([{"": 0.99}] * 10)
    hyps = decoder.decode(torch.stack([silent, silent]), torch.tensor([10, 0]))
    assert [h.text for h in hyps] == ["", ""]


def test_missing_and_corrupt_lm_get_clear_errors(tmp_path, lm_dir):
    with pytest.raises(AsrError, match=r"nope\.bin: no such language model file"):
        BeamSearchDecoder(Vocabulary(), str(tmp_path / "nope.bin"), str(lm_dir / "lexicon.txt"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(AsrError, match=r"junk\.bin: not a KenLM language model"):
        BeamSearchDecoder(Vocabulary(), str(junk), str(lm_dir / "lexicon.txt"))
    broken = tmp_path / "broken.arpa"
    broken.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\tthe\n")  # truncated ARPA
    with pytest.raises(AsrError, match=r"broken\.arpa: cannot load"):
        BeamSearchDecoder(Vocabulary(), str(broken), str(lm_dir / "lexicon.txt"))


def test_lexicon_with_foreign_characters_is_refused(tmp_path):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("cat c a t |\ncafé c a f é |\nx\n")
    with pytest.raises(AsrError) as e:
        BeamSearchDecoder(Vocabulary(), lexicon=str(lex))
    assert f"{lex}:2: tokens outside the model's vocabulary: é" in str(e.value)
    assert f"{lex}:3: word 'x' has no spelling" in str(e.value)


def test_lexicon_is_found_beside_a_word_lm(lm_dir, tmp_path):
    assert lexicon_for(str(lm_dir / "lm.arpa"), None) == str(lm_dir / "lexicon.txt")
    assert lexicon_for(str(lm_dir / "lm.arpa"), None, lexicon_free=True) is None
    lonely = tmp_path / "alone"
    lonely.mkdir()
    (lonely / "lm.arpa").write_text((lm_dir / "lm.arpa").read_text())
    with pytest.raises(AsrError, match="no lexicon.txt beside"):
        lexicon_for(str(lonely / "lm.arpa"), None)


def test_decode_config_round_trip_keeps_paths_relative(lm_dir, tmp_path):
    config = DecodeConfig(lm=str(lm_dir / "lm.arpa"), lexicon=str(lm_dir / "lexicon.txt"),
                          beam=BeamOptions(beam_size=7, lm_weight=1.25, word_score=-0.5))
    path = lm_dir / "decode.yaml"
    config.save(path, comment="tuned on nothing")
    text = path.read_text()
    assert text.startswith("# tuned on nothing") and "lm: lm.arpa" in text
    loaded = DecodeConfig.load(path)
    assert loaded.beam == config.beam and loaded.lm == str(lm_dir / "lm.arpa")
    path.write_text("lm_wieght: 2\n")
    with pytest.raises(AsrError, match="unknown decoding options: lm_wieght"):
        DecodeConfig.load(path)


def test_one_decoder_shared_by_threads_gives_each_call_its_own_answer(lm_dir):
    """flashlight's decode holds the GIL from decodeBegin to decodeEnd (its binding releases nothing), so calls on
    one decoder never interleave: shared by many threads, each gets what it would alone (docs/serving.md)."""
    import threading

    decoder = BeamSearchDecoder(Vocabulary(), str(lm_dir / "lm.arpa"), str(lm_dir / "lexicon.txt"),
                                BeamOptions(beam_size=20, lm_weight=1.0))
    inputs = [emissions(spell(text, per_char=3) * 20) for text in ("the cat", "the cap", "sat", "cat sat")]
    expected = [one(decoder, lp).text for lp in inputs]
    assert len(set(expected)) == len(inputs)
    results: dict[int, list[str]] = {i: [] for i in range(8)}
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()  # all start together
        for _ in range(5):
            results[i].append(one(decoder, inputs[i % len(inputs)]).text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == [expected[i % len(inputs)]] * 5 for i in range(8))
