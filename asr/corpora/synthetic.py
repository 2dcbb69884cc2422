"""The offline synthetic English corpus: public-domain sentences read by Debian's TTS voices.

Sentences come from the King James Bible (Debian ``bible-kjv``) and WordNet's usage examples
(``wordnet-base``), normalised. To keep a CPU-sized model's task learnable, only sentences whose words all
lie in the ``vocab_words`` most frequent words are used. Splits never share a sentence:

- ``train``, ``dev``, ``test``: read by the training voices; ``test`` sentences are never in ``train``.
- ``test_unseen_voice``: new sentences read by voices that never appear in training.

Each utterance gets its own speaking rate, pitch shift, noise type and SNR, drawn from ``seed``. Generation is
split into chunks run in parallel; every file is written atomically, so an interrupted run resumes where it
stopped, and a finished run leaves a marker that makes the next run a no-op.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.corpora import system, tts
from asr.dsp import add_noise, coloured_noise
from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.manifest import Utterance, write_manifest
from asr.text import Vocabulary, normalize

SPLITS = ("train", "dev", "test", "test_unseen_voice")
TEXT_PACKAGES = ["bible-kjv", "wordnet-base"]  # sentence sources


@dataclass(frozen=True)
class SyntheticConfig:
    out_dir: str = "data/synthetic"
    train: int = 17000  # utterances per split
    dev: int = 200
    test: int = 300
    test_unseen_voice: int = 300
    train_voices: tuple[str, ...] = (
        "flite:kal16", "flite:slt", "flite:rms",
        "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts",
        "espeak:en-us", "espeak:en-us+f3", "espeak:en+m3",
    )
    unseen_voices: tuple[str, ...] = ("flite:awb", "festival:ked_diphone", "espeak:en-us+f4")
    vocab_words: int = 500  # sentences use only the most frequent words of the text sources
    split_commas: bool = True  # also split Bible verses at commas: many more distinct (shorter) sentences
    min_words: int = 3
    max_words: int = 12
    rate: tuple[float, float] = (0.9, 1.15)  # speaking-rate factor range
    pitch: tuple[float, float] = (-2.0, 2.0)  # pitch shift range, semitones
    snr_db: tuple[float, float] = (15.0, 40.0)  # SNR range of the added noise
    clean_fraction: float = 0.2  # utterances left without noise
    seed: int = 1234
    jobs: int = 0  # worker processes; 0 = one per core
    chunk: int = 40  # utterances per task (festival starts once per task)

    def fingerprint(self) -> str:
        """Hash of everything that changes the corpus (not ``jobs``/``chunk``/``out_dir``)."""
        d = asdict(self)
        for k in ("jobs", "chunk", "out_dir"):
            d.pop(k)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# -- sentences ---------------------------------------------------------------------------------------------

def _bible_sentences(split_commas: bool) -> list[str]:
    try:
        out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise AsrError(f"cannot read the King James Bible through 'bible' (Debian bible-kjv): {e}") from None
    clauses = []
    for line in out.splitlines():
        m = re.match(r"^\S+\d+:\d+ (.*)", line)
        if m:
            clauses += split_clauses(m.group(1), split_commas)
    return clauses


def split_clauses(verse: str, split_commas: bool = True) -> list[str]:
    """Cut a verse into clauses at sentence punctuation and, with ``split_commas``, at commas.

    Verses are long. Cutting at commas too gives 4 to 5 times more distinct sentences within the same word
    list (20,500 instead of 4,100 for the 500 most frequent words; 36,000 instead of 8,300 for 1,000). That
    matters more than it seems: a BiLSTM that hears the same few thousand sentences for many epochs learns
    them by heart (measured: 1.7 % WER on its training sentences, 23 % on new ones), so the demo does better
    hearing twice as many distinct sentences half as often (measured with 1,000 words and the same training
    compute: 22.9 % -> 16.9 % greedy WER on each corpus' own test split).
    """
    return re.split(r"[.;:?!,]" if split_commas else r"[.;:?!]", verse)


def _wordnet_sentences(root: str = "/usr/share/wordnet") -> list[str]:
    examples = []
    for path in sorted(glob.glob(f"{root}/data.*")):
        with open(path, encoding="latin-1") as f:
            for line in f:
                if not line.startswith("  "):  # the licence header is indented
                    examples += re.findall(r'"([^"]+)"', line)
    if not examples:
        raise AsrError(f"no WordNet examples found under {root} (Debian wordnet-base)")
    return examples


def select_sentences(raw: list[str], vocab_words: int, min_words: int, max_words: int) -> list[str]:
    """Normalise, drop duplicates and out-of-range lengths, keep sentences within the top ``vocab_words``."""
    vocab = Vocabulary()
    seen = dict.fromkeys(
        t for t in map(normalize, raw) if min_words <= len(t.split()) <= max_words and not vocab.unknown(t)
    )
    sentences = list(seen)
    counts = Counter(w for s in sentences for w in s.split())
    allowed = {w for w, _ in counts.most_common(vocab_words)}
    return [s for s in sentences if all(w in allowed for w in s.split())]


# -- the plan ----------------------------------------------------------------------------------------------

@dataclass
class Item:
    split: str
    id: str
    text: str
    voice: str
    rate: float
    pitch: float
    noise: str  # "none", "white", "pink" or "brown"
    snr_db: float
    seed: int


def plan(cfg: SyntheticConfig, sentences: list[str]) -> list[Item]:
    """Assign sentences to splits (disjoint) and draw each utterance's voice and conditions."""
    rng = random.Random(cfg.seed)
    sentences = sentences[:]
    rng.shuffle(sentences)
    sizes = {s: getattr(cfg, s) for s in SPLITS}
    if sum(sizes.values()) > len(sentences):
        raise AsrError(f"only {len(sentences)} sentences for {sum(sizes.values())} utterances: "
                       f"raise vocab_words or lower the split sizes")
    items: list[Item] = []
    start = 0
    # Held-out splits take their sentences first so their size never depends on the train size.
    for split in ("test", "test_unseen_voice", "dev", "train"):
        voices = cfg.unseen_voices if split == "test_unseen_voice" else cfg.train_voices
        for n, text in enumerate(sentences[start:start + sizes[split]]):
            noise = "none" if rng.random() < cfg.clean_fraction else rng.choice(["white", "pink", "brown"])
            items.append(Item(
                split=split, id=f"{split}-{n:06d}", text=text, voice=voices[n % len(voices)],
                rate=round(rng.uniform(*cfg.rate), 3), pitch=round(rng.uniform(*cfg.pitch), 2),
                noise=noise, snr_db=round(rng.uniform(*cfg.snr_db), 1), seed=rng.randrange(2**31),
            ))
        start += sizes[split]
    return items


# -- generation --------------------------------------------------------------------------------------------

NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1/f^exponent


def degrade(wave: torch.Tensor, item: Item) -> torch.Tensor:
    """Add the item's noise to ``(samples,)`` audio at its SNR and normalise the peak to a random level in
    [0.3, 0.95], drawn from the item's seed."""
    generator = torch.Generator().manual_seed(item.seed)
    if item.noise != "none" and wave.numel():
        wave = add_noise(wave, coloured_noise(wave.numel(), NOISE_EXPONENTS[item.noise], generator), item.snr_db)
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    if peak > 0:
        wave = wave * ((0.3 + 0.65 * float(torch.rand((), generator=generator))) / peak)
    return wave


def _audio_path(out_dir: Path, item: Item) -> Path:
    return out_dir / "audio" / item.split / f"{item.id}.flac"


def _worker_init() -> None:
    torch.set_num_threads(1)  # one process per core already


def _generate_chunk(args: tuple[str, list[Item]]) -> int:
    """Synthesise one chunk (one voice); skip files already written. Returns how many were made."""
    out_dir, items = Path(args[0]), args[1]
    todo = [it for it in items if not _audio_path(out_dir, it).exists()]
    if not todo:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(it.text, Path(tmp) / f"{it.id}.wav") for it in todo]
        tts.synthesize(tts.Voice.parse(todo[0].voice), jobs, [it.rate for it in todo], [it.pitch for it in todo])
        for it, (_, wav) in zip(todo, jobs):
            wave = degrade(load_audio(wav), it)
            with atomic_path(_audio_path(out_dir, it), ".flac") as part:  # a file that exists is complete
                sf.write(part, wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    return len(todo)


def prepare(cfg: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> dict[str, Path]:
    """Build the corpus under ``cfg.out_dir``; returns the manifest path of each split.

    Installs the Debian TTS packages when they are missing. Idempotent and resumable.
    """
    out = Path(cfg.out_dir)
    manifests = {s: out / f"{s}.jsonl" for s in SPLITS}
    marker = out / ".done"
    if marker.exists() and marker.read_text().strip() == cfg.fingerprint() and all(p.exists() for p in manifests.values()):
        print(f"{out}: already prepared (delete {marker} to rebuild)")
        return manifests
    voices = [tts.Voice.parse(v) for v in cfg.train_voices + cfg.unseen_voices]
    if set(cfg.train_voices) & set(cfg.unseen_voices):
        raise AsrError("a voice cannot be both a training voice and an unseen voice")
    system.ensure(tts.packages({v.engine for v in voices}) + TEXT_PACKAGES)
    sentences = select_sentences(_bible_sentences(cfg.split_commas) + _wordnet_sentences(), cfg.vocab_words, cfg.min_words, cfg.max_words)
    items = plan(cfg, sentences)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.jsonl").write_text("".join(json.dumps(asdict(it)) + "\n" for it in items))

    by_voice: dict[str, list[Item]] = {}
    for it in items:
        by_voice.setdefault(it.voice, []).append(it)
    tasks = [(str(out), group[i:i + cfg.chunk]) for group in by_voice.values() for i in range(0, len(group), cfg.chunk)]
    # Slow voices (festival) first, so no worker is left with a long tail at the end.
    tasks.sort(key=lambda t: not t[1][0].voice.startswith("festival"))
    jobs = cfg.jobs or len(os.sched_getaffinity(0))
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc="synthesise", unit="utt", disable=not progress)
    bar.update(sum(1 for it in items if _audio_path(out, it).exists()))
    # spawn, not fork: a forked child of a process whose torch/OpenMP threads already ran can deadlock.
    with get_context("spawn").Pool(jobs, initializer=_worker_init) as pool:
        for done in pool.imap(_generate_chunk, tasks):
            bar.update(done)
    bar.close()

    by_split: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    for it in items:  # one header read per file, for the manifests and the summary alike
        audio = _audio_path(out, it)
        by_split[it.split].append(Utterance(str(audio.resolve()), round(sf.info(str(audio)).duration, 3), it.text))
    for split, path in manifests.items():
        write_manifest(path, by_split[split])
    hours = sum(u.duration for u in by_split["train"]) / 3600
    marker.write_text(cfg.fingerprint() + "\n")
    print(f"{out}: {len(items)} utterances, {hours:.2f} h of training audio, "
          f"{len(set(w for s in sentences for w in s.split()))} words in the sentence pool")
    return manifests
