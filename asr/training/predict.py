"""``asr transcribe-corpus``: transcribe a corpus in parts with Lightning's ``Trainer.predict``, on one process or
many (DDP over GPUs, nodes through torchrun or SLURM, or CPU processes), resumably.

Each rank takes the parts of the plan (:mod:`asr.bulk`) whose number modulo the world size is its rank, and
skips those already done. A loader worker reads a part's audio and cuts long files at pauses
(:class:`asr.windows.WindowReader`), so the ranks' processes only run the network, over windows of the whole
part bucketed by length; decoding (beam search and the LM on the CPU) runs on a thread beside the next part's
forward passes. A part's rows go to its file when the whole part is done, through a temporary name: a rank
killed mid-part leaves nothing of that part, and the same command again does exactly what is left. At the end
rank 0 merges the parts (``merged.jsonl``, ``summary.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pytorch_lightning as pl
import torch
import yaml

from asr import checkpoint
from asr.bulk import plan as bulk
from asr.bulk.merge import merge
from asr.assemble import Assembler, Assembly, Result
from asr.audio import SAMPLE_RATE
from asr.batching import pack_sorted
from asr.decode import Decoder, GreedyDecoder
from asr.errors import AsrError
from asr.modelfolder import find
from asr.windows import SegmentOptions, Span, WindowReader


class PartSet(torch.utils.data.IterableDataset):
    """Parts ``indices`` of the plan, read in loader workers (each worker every n-th part): each utterance's
    windows and audio, or the reason it could not be read. Iterable rather than sized: a rank may have nothing
    left to do, and Lightning refuses a sized loader of length zero on one rank only."""

    def __init__(self, plan: bulk.Plan, indices: list[int], segmenting: SegmentOptions, frame_seconds: float):
        self.plan, self.indices = plan, indices
        self.reader = WindowReader(segmenting, frame_seconds)

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        start, step = (worker.id, worker.num_workers) if worker else (0, 1)
        for index in self.indices[start::step]:
            yield self.read(index)

    def read(self, index: int) -> dict:
        entries = []
        for item in self.plan.parts[index]:
            entry = {"item": item, "windows": None, "duration": 0.0, "waves": [], "error": item.error}
            if item.error is None:
                try:
                    with self.reader.open(Span(item.audio_filepath, item.offset, item.duration)) as planned:
                        entry["windows"], entry["duration"] = planned.windows, planned.duration
                        entry["waves"] = [w for _, w in planned.audio]
                except AsrError as e:
                    entry["error"] = str(e)
            entries.append(entry)
        return {"index": index, "entries": entries}


def row(item: bulk.Item, result: Result | None, error: str | None, model: str) -> dict:
    """What a part file holds of one utterance: the transcript, its words and times, and what pseudo-labelling
    needs to trust it (mean log-probability, blank probability, the model)."""
    base = {"id": item.id, "audio_filepath": item.audio_filepath, "offset": item.offset, "model": model}
    if item.text is not None:
        base["reference"] = item.text
    if error is not None:
        return {**base, "seconds": item.seconds, "text": "", "error": error}
    weights = [max(s.end - s.start, 1e-3) for s in result.segments]  # each segment weighs as long as it lasts
    total = sum(weights) or 1.0
    return {**base, "seconds": round(result.duration, 3), "text": result.text,
            "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence}
                      for w in result.words],
            "avg_logprob": round(sum(s.avg_logprob * w for s, w in zip(result.segments, weights)) / total, 4),
            "no_speech_prob": round(sum(s.no_speech_prob * w for s, w in zip(result.segments, weights)) / total, 4)}


class CorpusTranscriber(pl.LightningModule):
    """The network in ``predict_step``; decoding and writing on a thread (:meth:`finish_part`)."""

    def __init__(self, recognizer: checkpoint.Recognizer, make_decoder: Callable[[], Decoder] | None,
                 plan: bulk.Plan, out: Path, model_id: str, segmenting: SegmentOptions,
                 max_batch_seconds: float = 200.0, num_workers: int = 1, decode_threads: int = 1):
        """``make_decoder`` gives the decoder each decoding thread uses (None: greedy); a beam decoder is one
        process pool shared by them (:mod:`asr.decoder_pool`)."""
        super().__init__()
        self.plan, self.segmenting, self.num_workers = plan, segmenting, num_workers
        self.features, self.model = recognizer.features, recognizer.model
        self.vocab = recognizer.vocab
        self.make_decoder = make_decoder or (lambda: GreedyDecoder(recognizer.vocab))
        self.local = threading.local()
        self.out, self.model_id, self.max_batch_seconds = out, model_id, max_batch_seconds
        self.threads = decode_threads
        self.pool = ThreadPoolExecutor(max_workers=decode_threads) if decode_threads else None
        self.pending: list[Future] = []

    def predict_dataloader(self) -> torch.utils.data.DataLoader:
        """This rank's share of the parts still to do (every world-size-th of them, so that a rerun spreads what
        is left over all ranks). Asked for once the ranks exist (under DDP, Lightning starts them in ``predict``),
        and before any rank writes: Lightning compares the loaders across ranks first."""
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if self.trainer.strategy.root_device.type == "cpu":  # ranks sharing the cores: one thread team each
            local = max(world // max(self.trainer.num_nodes, 1), 1)
            torch.set_num_threads(max((os.cpu_count() or 1) // local, 1))
        todo = bulk.pending(self.out, self.plan)
        mine = todo[rank::world]
        print(f"rank {rank}/{world}: {len(mine)} of {len(self.plan.parts)} parts to do "
              f"({len(self.plan.parts) - len(todo)} done before)", file=sys.stderr, flush=True)
        parts = PartSet(self.plan, mine, self.segmenting, self.frame_seconds)
        return torch.utils.data.DataLoader(parts, batch_size=None, num_workers=self.num_workers,
                                           multiprocessing_context="spawn" if self.num_workers else None)

    @property
    def frame_seconds(self) -> float:
        return self.recognizer().frame_seconds

    def recognizer(self) -> checkpoint.Recognizer:
        return checkpoint.Recognizer(self.features, self.model, self.vocab)

    def transfer_batch_to_device(self, batch: dict, device: torch.device, dataloader_idx: int) -> dict:
        return batch  # NumPy audio and plan items: the recognizer moves each padded batch itself

    def predict_step(self, batch: dict, batch_idx: int) -> None:
        waves = [(e, k, w) for e in batch["entries"] for k, w in enumerate(e["waves"])]
        lengths = [len(w) for _, _, w in waves]
        outputs: list[np.ndarray | None] = [None] * len(waves)
        rec = self.recognizer()
        order = sorted(range(len(waves)), key=lengths.__getitem__)  # bucketed by length across the part's files
        for group in pack_sorted(order, lengths, self.max_batch_seconds * SAMPLE_RATE):
            for i, lp in zip(group, rec.run([waves[i][2] for i in group])):
                outputs[i] = lp
        job = (batch["index"], batch["entries"], [(e, k, lp) for (e, k, _), lp in zip(waves, outputs)])
        if self.pool is None:
            self.finish_part(*job)
            return
        self.pending.append(self.pool.submit(self.finish_part, *job))
        self._collect(block=False)
        while len(self.pending) > 2 * self.threads:  # decoding fell behind: hold the network, bound the memory
            self.pending.pop(0).result()

    @property
    def assembler(self) -> Assembler:
        """This thread's assembler, with a decoder of its own."""
        if not hasattr(self.local, "assembler"):
            rec = self.recognizer()
            self.local.assembler = Assembler(self.make_decoder(), self.vocab, rec.frame_seconds, timestamps=True)
        return self.local.assembler

    def finish_part(self, index: int, entries: list[dict], outputs: list) -> None:
        """Decode every utterance of a part from its windows' outputs, and write the part's file."""
        assemblies = {}
        for e in entries:
            if e["error"] is None:
                assemblies[id(e)] = Assembly(Result(e["item"].audio_filepath, duration=e["duration"]),
                                             e["windows"], e["item"].offset)
        for e, k, lp in outputs:
            self.assembler.add(assemblies[id(e)], k, lp)
        rows = []
        for e in entries:
            if e["error"] is not None:
                rows.append(row(e["item"], None, e["error"], self.model_id))
                continue
            assembly = assemblies[id(e)]
            self.assembler.decode_ready(assembly)
            rows.append(row(e["item"], self.assembler.finish(assembly), None, self.model_id))
        bulk.write_part(self.out, index, rows)

    def _collect(self, block: bool) -> None:
        keep = []
        for f in self.pending:
            if block or f.done():
                f.result()  # raises what the thread raised
            else:
                keep.append(f)
        self.pending = keep

    def on_predict_end(self) -> None:
        self._collect(block=True)


def _trainer_options(argv: list[str]) -> tuple[dict, list[str]]:
    """``--trainer.KEY VALUE`` pairs (or ``--trainer.KEY=VALUE``) taken out of ``argv`` as Trainer keyword
    arguments, and the rest of ``argv`` (taken out first: argparse would read a pair's value as an input)."""
    options, rest, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--trainer."):
            rest.append(arg)
            i += 1
            continue
        key, equals, value = arg[len("--trainer."):].partition("=")
        if not equals:
            i += 1
            if i >= len(argv):
                raise AsrError(f"{arg} needs a value")
            value = argv[i]
        options[key.replace("-", "_")] = yaml.safe_load(value)
        i += 1
    return options, rest


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr transcribe-corpus", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="manifests (.jsonl; text, when present, is scored) or folders of audio")
    p.add_argument("--model", required=True, help="model.pt, a training .ckpt or a PyTorch model folder")
    p.add_argument("--out", required=True, help="folder for the part files, merged.jsonl and summary.json")
    p.add_argument("--part-hours", type=float, default=1.0, help="audio per part (default 1 hour)")
    p.add_argument("--decode-config", help="beam search with the LM of this config (default: greedy, or the folder's)")
    p.add_argument("--beam-size", type=int)
    p.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio seconds per forward pass")
    p.add_argument("--max-segment", type=float, default=SegmentOptions.max_segment)
    p.add_argument("--num-workers", type=int, default=1, help="loader workers per rank (reading and cutting audio)")
    p.add_argument("--decode-threads", type=int, default=1,
                   help="threads per rank decoding beside the next part's forward passes (0: in turn)")
    return p


def transcribe_corpus(argv: list[str]) -> dict | None:
    """Run the plan's pending parts on this rank; rank 0 merges at the end and returns the summary."""
    trainer_options, argv = _trainer_options(argv)
    args = parser().parse_args(argv)
    options = {"accelerator": "auto", "devices": 1, **trainer_options}
    if options["devices"] not in (1, "1") and "strategy" not in options:
        options["strategy"] = "ddp"  # one process a device (torchrun and SLURM set the world up themselves)
    files = find(args.model)
    if files.model.endswith(".onnx"):
        raise AsrError(f"{files.model}: transcribe-corpus runs PyTorch models (Lightning): give the model.pt")
    plan = bulk.plan(args.inputs, args.part_hours)
    out = Path(args.out)
    bulk.check_folder(out, plan)
    recognizer = checkpoint.load(files.model)
    make_decoder = None
    if args.decode_config or files.decode_config or args.beam_size:
        from asr.beam import decoder_for
        from asr.decoder_pool import DecoderPool

        # Built here, so a bad config fails in one line before any rank starts; decoded in worker processes,
        # one pool a rank shared by its threads (flashlight holds the GIL: threads would decode one at a time).
        beam = decoder_for(recognizer.vocab, args.decode_config or files.decode_config, beam_size=args.beam_size)
        lock, shared = threading.Lock(), []

        def make_decoder() -> Decoder:
            with lock:
                if not shared:
                    shared.append(DecoderPool(beam, max(args.decode_threads, 1)))
                return shared[0]
    module = CorpusTranscriber(recognizer, make_decoder, plan, out, bulk.model_identity(files.model),
                               SegmentOptions(max_segment=args.max_segment), args.batch_seconds, args.num_workers,
                               args.decode_threads)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         use_distributed_sampler=False, **options)
    trainer.predict(module, return_predictions=False)
    if trainer.world_size > 1:
        trainer.strategy.barrier()  # every rank's parts written before rank 0 merges
    return merge(out) if trainer.global_rank == 0 else None
