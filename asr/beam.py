"""CTC beam search with flashlight-text's decoders and KenLM, behind the :class:`Decoder` interface.

Called directly rather than through torchaudio's ``ctc_decoder`` (a thin wrapper of the same classes), so beam
search needs neither torch nor torchaudio: an ONNX model decodes with the LM on the light install.

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
        if " " not in vocab.characters:
            raise AsrError("beam search needs a vocabulary with a space (the word boundary)")
        if lm is not None:
            check_lm_file(lm)
        self._words = check_lexicon(lexicon, vocab) if lexicon is not None else None
        self.vocab, self.options, self.lm, self.lexicon = vocab, options, lm, lexicon
        self.tokens = decoder_tokens(vocab)
        try:
            self._decoder, self._lm = self._build()
        except Exception as e:  # flashlight raises plain RuntimeErrors from C++
            raise LMError(f"{lm or lexicon}: cannot load for decoding ({str(e).strip().splitlines()[0]})") from None
        self._space = vocab.encode(" ")[0]

    def _build(self):
        """flashlight's decoder as torchaudio's ``ctc_decoder`` builds it (the same options, trie and smearing)."""
        from flashlight.lib.text import decoder as fl
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words
        from flashlight.lib.text.decoder.kenlm import KenLM

        o = self.options
        tokens = Dictionary(self.tokens)
        blank, silence = tokens.get_index(BLANK_TOKEN), tokens.get_index(WORD_BOUNDARY)
        beam_tokens = o.beam_size_token or tokens.index_size()
        if self.lexicon is not None:
            lexicon = load_words(self.lexicon)
            words = create_word_dict(lexicon)
            lm = KenLM(self.lm, words) if self.lm else fl.ZeroLM()
            trie = fl.Trie(tokens.index_size(), silence)
            start = lm.start(False)
            for word, spellings in lexicon.items():
                index = words.get_index(word)
                _, score = lm.score(start, index)
                for spelled in spellings:
                    trie.insert([tokens.get_index(t) for t in spelled], index, score)
            trie.smear(fl.SmearingMode.MAX)
            options = fl.LexiconDecoderOptions(o.beam_size, beam_tokens, o.beam_threshold, o.lm_weight, o.word_score,
                                               o.unk_score, o.sil_score, o.log_add, fl.CriterionType.CTC)
            decoder = fl.LexiconDecoder(options, trie, lm, silence, blank, words.get_index(UNK_WORD), [], False)
        else:
            # Lexicon-free, the decoder scores token i as LM word i: the LM's dictionary is the tokens, in order.
            lm = KenLM(self.lm, Dictionary(self.tokens + [UNK_WORD])) if self.lm else fl.ZeroLM()
            options = fl.LexiconFreeDecoderOptions(o.beam_size, beam_tokens, o.beam_threshold, o.lm_weight,
                                                   o.sil_score, o.log_add, fl.CriterionType.CTC)
            decoder = fl.LexiconFreeDecoder(options, lm, silence, blank, [])
        return decoder, lm  # the LM too: the decoder holds it by reference only (pybind11)

    def describe(self) -> str:
        o = self.options
        return (f"beam {o.beam_size}" + (" + lexicon" if self.lexicon else "")
                + (f" + LM (weight {o.lm_weight:g}, word score {o.word_score:g})" if self.lm else ""))

    def decode(self, log_probs, lengths) -> list[Hypothesis]:
        emissions = np.ascontiguousarray(as_numpy(log_probs), dtype=np.float32)  # (batch, frames, tokens)
        lengths = np.asarray(as_numpy(lengths), dtype=np.int64)
        hyps = []
        for b in range(emissions.shape[0]):
            # flashlight reads the utterance's frames in place, from a pointer to its first.
            nbest = self._decoder.decode(emissions[b].ctypes.data, int(lengths[b]), emissions.shape[2])
            nbest = nbest[: self.options.nbest]
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
        """Our hypothesis from flashlight's (one token per frame, with a boundary on either side), and whether it
        ends on a finished word."""
        tokens, frames = [], []
        path = list(h.tokens)[1:-1]  # flashlight pads the frame path with a boundary at each end
        for frame, tok in enumerate(path):
            if tok == BLANK or (frame and path[frame - 1] == tok):
                continue  # CTC: blanks and repeats collapse
            if tok == self._space and (not tokens or tokens[-1] == self._space):
                continue  # flashlight opens every hypothesis with a boundary; drop it and any doubles
            tokens.append(tok)
            frames.append(frame)
        if tokens and tokens[-1] == self._space:
            tokens.pop()
            frames.pop()
        text = self.vocab.decode(tokens)
        complete = True
        if self._words is not None and text and text.split()[-1] not in self._words:
            # A hypothesis may end inside a word (a lexicon prefix): drop the unfinished word.
            complete = False
            cut = max(text.rfind(" "), 0)
            tokens, frames, text = tokens[:cut], frames[:cut], text[:cut]
        return Hypothesis(text=text, tokens=tokens, frames=frames, score=float(h.score)), complete
