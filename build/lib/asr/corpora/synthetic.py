"""The offline synthetic English corpus: public-domain sentences read by many TTS voices, shaped like real files.

Sentences come from Debian's public-domain text (:mod:`asr.corpora.text_sources`: the King James Bible, WordNet's
examples, the fortune files), normalised. A CPU-sized model's task stays learnable by keeping only sentences whose
words all lie in the ``vocab_words`` most frequent words of that pool. Splits never share a sentence:

- ``train``, ``dev``: read by the training voices: a fixed set of flite, festival and espeak-ng voices plus,
  drawn at random, neural voices (Silero, Kokoro, hibari: ``neural_share`` of the training files) and espeak-ng's
  English accents crossed with its voice variants (``espeak_share``);
- ``test``: new sentences, one per file, read by the fixed training voices;
- ``test_unseen_voice``: new sentences read by voices that never appear in training;
- ``test_neural_voice``: new sentences read by a neural voice (Piper's en_US-joe-medium) never heard in training,
  the most human-like voice available offline;
- ``test_long``: files of several new sentences (10-30 s) with pauses, read by the fixed training voices.

Training files are shaped like real recordings: silence before and after the speech, and ``multi_fraction`` of
them hold several sentences of one voice separated by pauses. Each file gets its own speaking rate, pitch
shift, noise type and SNR, drawn from ``seed``. Generation is split into chunks run in parallel; every file is
written atomically, so an interrupted run resumes where it stopped, and a finished run leaves a marker that
makes the next run a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.corpora import system, text_sources, tts, tts_assets
from asr.corpora.dsp import add_noise, coloured_noise
from asr.errors import AsrError
from asr.fileio import atomic_path, atomic_write_text
from asr.progress import Progress
from asr.manifest import Utterance, write_manifest
from asr.text import Vocabulary, normalize

SPLITS = ("train", "dev", "test", "test_unseen_voice", "test_neural_voice", "test_long")
HELD_OUT = SPLITS[1:]  # their sentences never reach training, nor the general LM text
# espeak-ng voice variants that sound like a person (robots, whispers and f4, an unseen voice, left out).
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f5", "klatt", "klatt2", "klatt3",
                   "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Mike", "adam",
                   "anika", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma",
                   "grandpa", "iven", "john", "linda", "max", "norbert", "paul", "quincy", "rob", "robert",
                   "shelby", "steph", "travis", "victor", "zac")
ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")


@dataclass(frozen=True)
class SyntheticConfig:
    out_dir: str = "data/synthetic"
    train: int = 10000  # training sentences (the demo's budget: about 5 h of audio)
    dev: int = 200  # sentences (one per file) of each held-out split...
    test: int = 300
    test_unseen_voice: int = 300
    test_neural_voice: int = 300
    test_long: int = 40  # ...but files of several sentences here
    train_voices: tuple[str, ...] = (
        "flite:kal16", "flite:slt", "flite:rms",
        "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts",
        "espeak:en-us", "espeak:en-us+f3", "espeak:en+m3",
    )
    espeak_accents: tuple[str, ...] = ESPEAK_ACCENTS  # crossed with espeak_variants: extra training speakers
    espeak_variants: tuple[str, ...] = ESPEAK_VARIANTS
    espeak_share: float = 0.0  # fraction of training files read by those accent x variant voices
    # Neural voices for training (never Piper's joe), drawn at random for neural_share of the training files;
    # "engine:*" stands for all of an engine's voices: Silero's 118 speakers, hibari, and (several times slower
    # to synthesise than Silero, so not in the demo) "kokoro:*", Kokoro's 28 English voices.
    neural_train_voices: tuple[str, ...] = ("silero:*", "hibari:*")
    neural_share: float = 0.15  # fraction of training files read by one of them (the demo's; docs/results.md)
    # Of the files drawn for a Kokoro voice, the fraction read by a blend of it and another Kokoro voice (style
    # vectors mixed 0.25-0.75): a new speaker per file, for the cost of the file.
    kokoro_blend: float = 0.0
    unseen_voices: tuple[str, ...] = ("flite:awb", "festival:ked_diphone", "espeak:en-us+f4")
    neural_voices: tuple[str, ...] = ("piper:joe",)  # test_neural_voice only
    text_sources: tuple[str, ...] = ("bible", "wordnet", "fortunes")
    vocab_words: int = 500  # sentences use only the most frequent words of the text sources
    split_commas: bool = True  # also split Bible verses at commas: many more distinct (shorter) sentences
    min_words: int = 3
    max_words: int = 12
    rate: tuple[float, float] = (0.9, 1.15)  # speaking-rate factor range
    pitch: tuple[float, float] = (-2.0, 2.0)  # pitch shift range, semitones
    snr_db: tuple[float, float] = (15.0, 40.0)  # SNR range of the added noise
    clean_fraction: float = 0.2  # files left without noise
    multi_fraction: float = 0.0  # training files holding several sentences (2..max_sentences)
    max_sentences: int = 6
    long_sentences: tuple[int, int] = (5, 12)  # sentences per test_long file (10-30 s)
    pause: tuple[float, float] = (0.15, 1.2)  # seconds of silence between sentences in one file
    edge_silence: tuple[float, float] = (0.0, 0.0)  # seconds of silence before and after a training file's speech
    seed: int = 1234
    jobs: int = 0  # worker processes; 0 = one per core
    chunk: int = 40  # sentences per task (festival starts once per task)

    def fingerprint(self) -> str:
        """Hash of everything that changes the corpus (not ``jobs``/``chunk``/``out_dir``)."""
        d = asdict(self)
        for k in ("jobs", "chunk", "out_dir"):
            d.pop(k)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def split_sizes(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in SPLITS}

    def espeak_voices(self) -> list[str]:
        return [f"espeak:{a}+{v}" for a in self.espeak_accents for v in self.espeak_variants]


# -- sentences ---------------------------------------------------------------------------------------------

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
    """One audio file to make: one voice reading ``texts`` with ``pauses`` of silence around and between them."""

    split: str
    id: str
    texts: list[str]
    voice: str
    rate: float
    pitch: float
    noise: str  # "none", "white", "pink" or "brown"
    snr_db: float
    seed: int
    pauses: list[float]  # seconds: before the first sentence, between each pair, after the last

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def _group_sizes(cfg: SyntheticConfig, split: str, sentences: int, rng: random.Random) -> list[int]:
    """How many sentences each file of ``split`` holds, covering ``sentences`` sentences."""
    if split == "test_long":
        return [rng.randint(*cfg.long_sentences) for _ in range(sentences)]
    sizes, left = [], sentences
    while left > 0:
        n = rng.randint(2, cfg.max_sentences) if split == "train" and rng.random() < cfg.multi_fraction else 1
        sizes.append(min(n, left))
        left -= sizes[-1]
    return sizes


def _voices(cfg: SyntheticConfig, split: str) -> tuple[list[str], list[tuple[float, list[str]]]]:
    """(fixed voices used in turn, [(share of files, voices drawn at random for them)]) for ``split``."""
    if split == "test_unseen_voice":
        return list(cfg.unseen_voices), []
    if split == "test_neural_voice":
        return list(cfg.neural_voices), []
    mixtures = [(cfg.espeak_share, cfg.espeak_voices()), (cfg.neural_share, tts.expand(cfg.neural_train_voices))]
    return list(cfg.train_voices), [m for m in mixtures if m[0] > 0 and m[1]] if split in ("train", "dev") else []


def _pick(rng: random.Random, fixed: list[str], mixtures: list[tuple[float, list[str]]], n: int) -> str:
    """The voice of file ``n``: from a mixture with that mixture's probability, else the fixed voices in turn."""
    if mixtures:  # no draw at all without mixtures: held-out splits keep their voices when mixtures change
        r = rng.random()
        for share, voices in mixtures:
            if r < share:
                return rng.choice(voices)
            r -= share
    return fixed[n % len(fixed)]


def _blend(voice: str, share: float, rng: random.Random) -> str:
    """Kokoro ``voice`` or, with probability ``share``, a blend of it and another Kokoro voice (weights
    0.25-0.75). ``rng`` is the file's own, so blending changes no other file of the plan."""
    if rng.random() >= share:
        return voice
    name = voice.partition(":")[2]
    other = rng.choice([v for v in tts_assets.KOKORO_ENGLISH if v != name])
    weight = rng.uniform(0.25, 0.75)
    return "kokoro:" + tts.kokoro_blend([name, other], [weight, 1 - weight])


def plan(cfg: SyntheticConfig, sentences: list[str]) -> list[Item]:
    """Assign sentences to splits (disjoint), group them into files and draw each file's voice and conditions.

    Each split draws from its own generator, so a held-out split stays the same when only the training
    split's options (its size, voices, file shapes) change: levers are measured on identical test sets.
    """
    sentences = sentences[:]
    random.Random(cfg.seed).shuffle(sentences)
    rngs = {split: random.Random(f"{cfg.seed}/{split}") for split in SPLITS}
    groups = {s: _group_sizes(cfg, s, n, rngs[s]) for s, n in cfg.split_sizes().items()}
    needed = sum(sum(g) for g in groups.values())
    if needed > len(sentences):
        raise AsrError(f"only {len(sentences)} sentences for {needed} in the splits: "
                       f"raise vocab_words or lower the split sizes")
    items: list[Item] = []
    start = 0
    # Held-out splits take their sentences first so their content never depends on the train size.
    for split in (*HELD_OUT, "train"):
        rng = rngs[split]
        fixed, mixtures = _voices(cfg, split)
        # Files shaped like recordings, silence around the speech: training's own range, test_long the pauses'.
        edge_range = cfg.edge_silence if split == "train" else cfg.pause if split == "test_long" else (0.0, 0.0)
        shifted = split != "test_neural_voice"  # the neural voice as it is: sox's pitch shift would colour it
        for n, size in enumerate(groups[split]):
            texts = sentences[start:start + size]
            start += size
            voice = _pick(rng, fixed, mixtures, n)
            if cfg.kokoro_blend and voice.startswith("kokoro:"):
                voice = _blend(voice, cfg.kokoro_blend, random.Random(f"{cfg.seed}/{split}/{n}"))
            edges = [round(rng.uniform(*edge_range), 3) for _ in range(2)]
            between = [round(rng.uniform(*cfg.pause), 3) for _ in range(size - 1)]
            noise = "none" if rng.random() < cfg.clean_fraction else rng.choice(["white", "pink", "brown"])
            items.append(Item(
                split=split, id=f"{split}-{n:06d}", texts=texts, voice=voice,
                rate=round(rng.uniform(*cfg.rate), 3), pitch=round(rng.uniform(*cfg.pitch), 2) if shifted else 0.0,
                noise=noise, snr_db=round(rng.uniform(*cfg.snr_db), 1), seed=rng.randrange(2**31),
                pauses=[edges[0], *between, edges[1]],
            ))
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


def assemble(sentences: list[torch.Tensor], pauses: list[float]) -> torch.Tensor:
    """``(samples,)`` sentences joined by ``pauses`` seconds of silence (one more pause than sentences)."""
    parts = [torch.zeros(int(round(pauses[0] * SAMPLE_RATE)))]
    for wave, pause in zip(sentences, pauses[1:]):
        parts += [wave, torch.zeros(int(round(pause * SAMPLE_RATE)))]
    return torch.cat(parts)


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
        jobs, rates, pitches, owners = [], [], [], []
        for it in todo:
            for k, text in enumerate(it.texts):
                jobs.append((text, Path(tmp) / f"{it.id}-{k}.wav"))
                rates.append(it.rate)
                pitches.append(it.pitch)
                owners.append(it)
        tts.synthesize(tts.Voice.parse(todo[0].voice), jobs, rates, pitches)
        for it in todo:
            waves = [load_audio(Path(tmp) / f"{it.id}-{k}.wav") for k in range(len(it.texts))]
            wave = degrade(assemble(waves, it.pauses), it)
            with atomic_path(_audio_path(out_dir, it), ".flac") as part:  # a file that exists is complete
                sf.write(part, wave.numpy(), SAMPLE_RATE, subtype="PCM_16")
    return len(todo)


def _forget_changed_files(out: Path, items: list[Item]) -> int:
    """Delete the audio of files whose plan (text, voice, conditions) differs from the last run's plan.jsonl.

    Finished files are skipped by name when a run resumes; after an option change the same name can stand for
    another file. Returns how many were deleted.
    """
    old_plan = out / "plan.jsonl"
    if not old_plan.exists():
        return 0
    before = {d["id"]: d for d in map(json.loads, old_plan.read_text(encoding="utf-8").splitlines()) if d}
    stale = 0
    for it in items:
        path = _audio_path(out, it)
        if before.get(it.id) != asdict(it) and path.exists():
            path.unlink()
            stale += 1
    return stale


def write_lm_text(path: Path, raw: list[str], held_out: set[str]) -> int:
    """The general-English LM text: every normalised sentence of the sources (any vocabulary, any length)
    except the held-out splits' sentences, one per line. Returns the number of sentences."""
    vocab = Vocabulary()
    lines = [t for t in dict.fromkeys(map(normalize, raw)) if t and not vocab.unknown(t) and t not in held_out]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_word_list(path: Path) -> int:
    """The general-English word list (normalised, spellable by the model), one word per line."""
    vocab = Vocabulary()
    words = sorted({w for w in map(normalize, text_sources.words()) if w and " " not in w and not vocab.unknown(w)})
    atomic_write_text(path, "".join(w + "\n" for w in words))
    return len(words)


def prepare(cfg: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> dict[str, Path]:
    """Build the corpus under ``cfg.out_dir``; returns the manifest path of each split.

    Also writes ``lm_text.txt`` and ``words.txt`` there: general-English text for ``asr lm build``, held-out
    sentences excluded. Installs the Debian TTS and text packages when they are missing. Idempotent and
    resumable.
    """
    out = Path(cfg.out_dir)
    manifests = {s: out / f"{s}.jsonl" for s in SPLITS}
    marker = out / ".done"
    if marker.exists() and marker.read_text().strip() == cfg.fingerprint() and all(p.exists() for p in manifests.values()):
        print(f"{out}: already prepared (delete {marker} to rebuild)")
        return manifests
    neural = tts.expand(cfg.neural_train_voices) if cfg.neural_share else []
    trained = {*cfg.train_voices, *neural, *(cfg.espeak_voices() if cfg.espeak_share else ())}
    if trained & (set(cfg.unseen_voices) | set(cfg.neural_voices)):
        raise AsrError("a voice cannot be both a training voice and a held-out voice")
    voices = [tts.Voice.parse(v) for v in (*cfg.train_voices, *cfg.unseen_voices, *cfg.neural_voices, *neural)]
    system.ensure(tts.packages(voices) + text_sources.packages((*cfg.text_sources, "words")))
    # Silero's and Kokoro's files are fetched once here, before the worker processes synthesise in parallel.
    tts_assets.fetch({v.engine for v in voices})
    raw = text_sources.read(cfg.text_sources, cfg.split_commas)
    sentences = select_sentences(raw, cfg.vocab_words, cfg.min_words, cfg.max_words)
    items = plan(cfg, sentences)
    out.mkdir(parents=True, exist_ok=True)
    stale = _forget_changed_files(out, items)
    if stale:
        print(f"{out}: {stale} files planned differently since the last run: made again")
    atomic_write_text(out / "plan.jsonl", "".join(json.dumps(asdict(it)) + "\n" for it in items))

    by_voice: dict[str, list[Item]] = {}
    for it in items:
        by_voice.setdefault(it.voice, []).append(it)
    tasks, task = [], []
    for group in by_voice.values():
        for it in group:  # about cfg.chunk sentences per task, whole files only
            task.append(it)
            if sum(len(t.texts) for t in task) >= cfg.chunk:
                tasks.append((str(out), task))
                task = []
        if task:
            tasks.append((str(out), task))
            task = []
    # Slow voices first, so no worker is left with a long tail at the end.
    tasks.sort(key=lambda t: not t[1][0].voice.startswith(("festival", "piper", "kokoro", "silero")))
    jobs = cfg.jobs or len(os.sched_getaffinity(0))
    done = sum(1 for it in items if _audio_path(out, it).exists())
    bar = Progress(len(items), "synthesise", "file", enabled=progress, initial=done)  # a bar, or lines in a log
    # spawn, not fork: a forked child of a process whose torch/OpenMP threads already ran can deadlock.
    with get_context("spawn").Pool(jobs, initializer=_worker_init) as pool:
        for done in pool.imap(_generate_chunk, tasks):
            bar.update(done)
    bar.close()

    by_split: dict[str, list[Utterance]] = {split: [] for split in SPLITS}
    for it in items:  # one header read per file, for the manifests and the summary alike
        audio = _audio_path(out, it)
        by_split[it.split].append(Utterance(str(audio.resolve()), round(sf.info(str(audio)).duration, 3), it.text,
                                             speaker=it.voice))
    for split, path in manifests.items():
        write_manifest(path, by_split[split])
    held_out = {t for it in items if it.split in HELD_OUT for t in it.texts}
    lm_sentences = write_lm_text(out / "lm_text.txt", raw, held_out)
    lm_words = write_word_list(out / "words.txt")
    marker.write_text(cfg.fingerprint() + "\n")
    hours = sum(u.duration for u in by_split["train"]) / 3600
    train_voices = len({it.voice for it in items if it.split == "train"})
    print(f"{out}: {len(items)} files, {hours:.2f} h of training audio from {train_voices} voices, "
          f"{len(set(w for s in sentences for w in s.split()))} words in the sentence pool; general-English LM "
          f"text: {lm_sentences} sentences, {lm_words} words in the word list")
    return manifests
