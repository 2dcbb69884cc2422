"""CTC beam search through torchaudio's ``ctc_decoder`` (flashlight-text), behind the :class:`Decoder` interface.

Three modes, picked by what is given:

- lexicon + word KenLM: words restricted to the lexicon, scored by the LM (the usual setup);
- no lexicon + character KenLM (built with ``asr lm build --unit char``): lexicon-free, the LM scores every token;
- no LM: plain beam search (with a lexicon it still forbids non-words).

The options live in one typed object; ``asr tune-lm`` writes them (with the LM paths) to a YAML decoding config
that ``asr transcribe``/``asr evaluate`` load with ``--decode-config``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import yaml

from asr.decode import Decoder, GreedyDecoder, Hypothesis, as_numpy
from asr.errors import AsrError
from asr.fileio import atomic_write_text
from asr.lexicon import BLANK_TOKEN, WORD_BOUNDARY, check_lexicon, decoder_tokens
from asr.lm import LEXICON_FILE, LMError, check_lm_file, lm_info
from asr.text import BLANK, Vocabulary

UNK_WORD = "<unk>"


@dataclass(frozen=True)
class BeamOptions:
    beam_size: int = 50  # hypotheses kept per frame
    beam_size_token: int | None = None  # tokens considered per frame (None: all)
    beam_threshold: float = 25.0  # drop hypotheses scoring this far below the best
    lm_weight: float = 2.0  # weight of the LM log-probability (natural log)
    word_score: float = 0.0  # added per emitted word (insertion bonus; negative = penalty)
    unk_score: float = -math.inf  # score of out-of-lexicon words (-inf: never emit them)
    sil_score: float = 0.0  # added per word boundary
    log_add: bool = False  # merge equal hypotheses by log-add (True) or max (False)
    nbest: int = 1  # hypotheses returned per utterance


@dataclass(frozen=True)
class DecodeConfig:
    """What a decoding config file holds: the LM, the lexicon and the beam options. ``lm=None``: no LM."""

    lm: str | None = None
    lexicon: str | None = None
    beam: BeamOptions = BeamOptions()

    def save(self, path: str | os.PathLike, comment: str = "") -> None:
        """YAML; LM and lexicon paths are stored relative to the file's folder so the pair can move together."""
        path = Path(path)
        rel = lambda p: None if p is None else os.path.relpath(Path(p).resolve(), path.parent.resolve())
        data = {"lm": rel(self.lm), "lexicon": rel(self.lexicon), **asdict(self.beam)}
        data["unk_score"] = str(data["unk_score"]) if math.isinf(data["unk_score"]) else data["unk_score"]
        header = "".join(f"# {line}\n" for line in comment.splitlines())
        atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DecodeConfig":
        path = Path(path)
        if not path.is_file():
            raise AsrError(f"{path}: no such decoding config")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise AsrError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise AsrError(f"{path}: expected a mapping of decoding options")
        known = {f.name: f for f in fields(BeamOptions)}
        unknown = sorted(set(data) - set(known) - {"lm", "lexicon"})
        if unknown:
            raise AsrError(f"{path}: unknown decoding options: {', '.join(unknown)}")
        beam = {}
        for k, v in data.items():
            if k in known and v is not None:
                try:
                    beam[k] = float(v) if k in ("unk_score", "lm_weight", "word_score", "sil_score", "beam_threshold") \
                        else (bool(v) if k == "log_add" else int(v))
                except (TypeError, ValueError):
                    raise AsrError(f"{path}: {k}: expected a number, got {v!r}") from None
        resolve = lambda p: None if p is None else os.path.normpath(path.parent / p)
        return cls(lm=resolve(data.get("lm")), lexicon=resolve(data.get("lexicon")), beam=BeamOptions(**beam))


def lexicon_for(lm: str | None, lexicon: str | None, lexicon_free: bool = False) -> str | None:
    """The lexicon to use: the one given, else ``lexicon.txt`` beside a word LM, else none (lexicon-free)."""
    if lexicon_free:
        return None
    if lexicon is not None or lm is None:
        return lexicon
    info = lm_info(lm)
    if info.get("config", {}).get("unit") == "char":
        return None
    beside = Path(lm).parent / (info.get("lexicon") or LEXICON_FILE)
    if not beside.is_file():
        raise LMError(f"{lm}: no {beside.name} beside this word LM: pass --lexicon, "
                      "or --lexicon-free with a character LM")
    return str(beside)


BEAM_FLAGS = ("beam_size", "lm_weight", "word_score", "beam_threshold", "nbest")  # options the CLI can override


def decoder_for(vocab: Vocabulary, decode_config: str | os.PathLike | None = None, lm: str | None = None,
                lexicon: str | None = None, lexicon_free: bool = False, **overrides) -> Decoder:
    """The decoder that a decoding config and explicit options ask for.

    Greedy unless an LM, a lexicon, a decoding config or a beam size is given. Explicit values override
    the config's: ``lm`` replaces its LM (and then its lexicon, which belongs to that LM, unless ``lexicon`` is
    given too); ``overrides`` are :class:`BeamOptions` fields (None = keep the config's value).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not (lm or lexicon or decode_config or overrides.get("beam_size")):
        return GreedyDecoder(vocab)
    config = DecodeConfig.load(decode_config) if decode_config else DecodeConfig()
    chosen_lm = lm or config.lm
    chosen_lexicon = lexicon or (config.lexicon if not lm else None)
    return BeamSearchDecoder(vocab, chosen_lm, lexicon_for(chosen_lm, chosen_lexicon, lexicon_free),
                             replace(config.beam, **overrides))


class BeamSearchDecoder(Decoder):
    """Beam search over CTC log-probabilities, optionally with a lexicon and a KenLM language model.

    Runs on the CPU (flashlight's decoder is CPU code); log-probabilities on another device are copied.
    """

    def __init__(self, vocab: Vocabulary, lm: str | None = None, lexicon: str | None = None,
                 options: BeamOptions = BeamOptions()):
        from torchaudio.models.decoder import ctc_decoder

        if " " not in vocab.characters:
            raise AsrError("beam search needs a vocabulary with a space (the word boundary)")
        if lm is not None:
            check_lm_file(lm)
        self._words = check_lexicon(lexicon, vocab) if lexicon is not None else None
        self.vocab, self.options, self.lm, self.lexicon = vocab, options, lm, lexicon
        self.tokens = decoder_tokens(vocab)
        lm_dict = None
        if lm is not None and lexicon is None:
            # Lexicon-free, the decoder scores token i as LM word i. torchaudio (2.11) builds that word list
            # in flashlight's sorted order, not the token order, so the LM would score the wrong characters;
            # an explicit dictionary in token order fixes the mapping.
            fd, lm_dict = tempfile.mkstemp(suffix=".dict")
            with os.fdopen(fd, "w") as f:
                f.write("".join(t + "\n" for t in self.tokens + [UNK_WORD]))
        try:
            self._decoder = ctc_decoder(
                lexicon=lexicon, tokens=self.tokens, lm=lm, lm_dict=lm_dict, nbest=options.nbest, beam_size=options.beam_size,
                beam_size_token=options.beam_size_token, beam_threshold=options.beam_threshold,
                lm_weight=options.lm_weight, word_score=options.word_score, unk_score=options.unk_score,
                sil_score=options.sil_score, log_add=options.log_add, blank_token=BLANK_TOKEN,
                sil_token=WORD_BOUNDARY, unk_word=UNK_WORD)
        except Exception as e:  # flashlight raises plain RuntimeErrors from C++
            raise LMError(f"{lm or lexicon}: cannot load for decoding ({str(e).strip().splitlines()[0]})") from None
        finally:
            if lm_dict is not None:
                os.unlink(lm_dict)  # read once, at construction
        self._space = vocab.encode(" ")[0]

    def describe(self) -> str:
        o = self.options
        return (f"beam {o.beam_size}" + (" + lexicon" if self.lexicon else "")
                + (f" + LM (weight {o.lm_weight:g}, word score {o.word_score:g})" if self.lm else ""))

    def decode(self, log_probs, lengths) -> list[Hypothesis]:
        import torch  # torchaudio's decoder takes tensors; importing asr.beam stays light without it

        emissions = torch.from_numpy(np.ascontiguousarray(as_numpy(log_probs)))
        results = self._decoder(emissions, torch.from_numpy(np.asarray(as_numpy(lengths), dtype=np.int32)))
        hyps = []
        for nbest in results:
            finished, unfinished = [], []
            for h in nbest:
                hyp, complete = self._hypothesis(h)
                (finished if complete else unfinished).append(hyp)
            alternatives, seen = [], set()
            for hyp in finished or unfinished[:1]:  # distinct texts, best first
                if hyp.text not in seen:
                    seen.add(hyp.text)
                    alternatives.append(hyp)
            best = alternatives[0] if alternatives else Hypothesis(text="")
            best.alternatives = alternatives
            hyps.append(best)
        return hyps

    def _hypothesis(self, h) -> tuple[Hypothesis, bool]:
        """Our hypothesis from flashlight's, and whether it ends on a finished word."""
        tokens, frames = [], []
        for tok, frame in zip(h.tokens.tolist(), h.timesteps.tolist()):
            if tok == BLANK or (tok == self._space and (not tokens or tokens[-1] == self._space)):
                continue  # flashlight opens every hypothesis with a boundary; drop it and any doubles
            tokens.append(tok)
            frames.append(frame)
        if tokens and tokens[-1] == self._space:
            tokens.pop()
            frames.pop()
        # The text comes from the tokens: torchaudio's ``words`` can miss the last word of a hypothesis.
        text = self.vocab.decode(tokens)
        complete = True
        if self._words is not None and text and text.split()[-1] not in self._words:
            # A hypothesis may end inside a word (a lexicon prefix): drop the unfinished word.
            complete = False
            cut = max(text.rfind(" "), 0)
            tokens, frames, text = tokens[:cut], frames[:cut], text[:cut]
        return Hypothesis(text=text, tokens=tokens, frames=frames, score=float(h.score)), complete
