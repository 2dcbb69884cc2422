"""Beam search in worker processes (asr.decoder_pool): the decoder's own answers, to many threads at once."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from asr.beam import BeamOptions, BeamSearchDecoder
from asr.decoder_pool import DecoderPool
from asr.lexicon import write_lexicon
from asr.text import Vocabulary
from lm_fixtures import emissions, spell, write_arpa


@pytest.fixture(scope="module")
def beam(tmp_path_factory) -> BeamSearchDecoder:
    root = tmp_path_factory.mktemp("lm")
    write_arpa(root / "lm.arpa", {"the": -0.5, "cat": -1.0, "cap": -1.0, "sat": -1.0},
               {("<s>", "the"): -0.1, ("the", "cat"): -0.05, ("the", "cap"): -3.0, ("cat", "</s>"): -0.1})
    write_lexicon(root / "lexicon.txt", ["the", "cat", "cap", "sat"])
    return BeamSearchDecoder(Vocabulary(), str(root / "lm.arpa"), str(root / "lexicon.txt"),
                             BeamOptions(beam_size=20, lm_weight=1.0))


def test_the_pool_gives_the_decoders_answers_in_order_to_many_threads(beam):
    texts = ["the cat", "the cap sat", "sat", "the"]
    batch = torch.nn.utils.rnn.pad_sequence([emissions(spell(t, per_char=2)) for t in texts], batch_first=True)
    lengths = torch.tensor([emissions(spell(t, per_char=2)).shape[0] for t in texts])
    expected = [h.text for h in beam.decode(batch, lengths)]
    pool = DecoderPool(beam, 2)
    try:
        assert len(pool.pids) == 2  # both workers up, their decoders built, before the first decode
        assert [h.text for h in pool.decode(batch, lengths)] == expected
        assert pool.describe() == beam.describe()
        results: dict[int, list[str]] = {}

        def work(i: int) -> None:
            results[i] = [h.text for h in pool.decode(batch, lengths)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(results[i] == expected for i in range(6))
        hyp = pool.decode(batch[:1], lengths[:1])[0]
        assert hyp.frames and len(hyp.frames) == len(hyp.tokens)  # frames travel back for word times
        assert {f.result() for f in [pool._pool.submit(os.getpid) for _ in range(8)]} <= set(pool.pids)  # no more
    finally:
        pool.close()
