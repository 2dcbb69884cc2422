"""The ``asr`` command. Each subcommand parses its arguments and hands off to the library."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr.errors import AsrError
from asr.extras import require
from asr.output import FORMATS


def _load_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`asr.api.load` that the running and decoding flags give (unset beam flags
    left out, so a ``--decode-config`` keeps its values)."""
    from asr.beam import BEAM_FLAGS

    options = {"device": args.device, "decode_config": args.decode_config, "lm": args.lm, "lexicon": args.lexicon,
               "lexicon_free": args.lexicon_free, "batch_seconds": args.batch_seconds,
               "max_segment": args.max_segment, "vtln": args.vtln, "adapt": args.adapt}
    if getattr(args, "chunked", False):
        from asr.chunked import ChunkSettings

        options["chunked"] = ChunkSettings(args.chunk, args.right_context)
    return {**options, **{k: getattr(args, k) for k in BEAM_FLAGS if getattr(args, k, None) is not None}}


def _load(args: argparse.Namespace):
    """The model of ``--model`` with the decoding flags over its ``--decode-config``."""
    from asr.api import load

    return load(args.model, **_load_options(args))


def _transcribe(args: argparse.Namespace) -> int:
    from asr.inputs import expand
    from asr.output import TranscriptWriter

    inputs = expand(args.files, args.glob)
    if args.format in ("srt", "vtt") and len(inputs) > 1 and not args.output_dir:
        raise AsrError(f"--format {args.format} with several files needs --output-dir (one subtitle file each)")
    model = _load(args)
    writer = TranscriptWriter(args.format, args.output_dir, nbest=bool(args.nbest and args.nbest > 1))
    names = dict((path, name) for name, path in inputs)
    failed = 0
    results = model.transcribe_files([path for _, path in inputs], timestamps=args.format != "txt",
                                     progress=sys.stderr.isatty())
    for r in results:
        if r.error:
            failed += 1
            print(f"asr: error: {r.error.replace(r.path, names.get(r.path, r.path))}", file=sys.stderr, flush=True)
        else:
            r.path = names.get(r.path, r.path)
            writer.write(r)
    if args.output_dir:
        print(f"asr: wrote {len(writer.written)} file(s) to {args.output_dir}", file=sys.stderr)
    if failed:
        print(f"asr: {failed} of {len(inputs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


SPEAKER_LINES = 10  # `asr evaluate` prints each speaker's rates when a manifest names 2 to this many


def _evaluate(args: argparse.Namespace) -> int:
    from asr.evaluate import evaluate, write_report

    for flag, pattern in (("--report", args.report), ("--greedy-report", args.greedy_report)):
        if pattern and len(args.manifest) > 1 and "{split}" not in pattern:
            raise AsrError(f"{flag} with several manifests needs {{split}} in its name (the manifest's stem)")
    model = _load(args)  # once for every manifest
    greedy_too = bool(args.greedy_report)
    transcriber = model.transcriber(timestamps=False, keep_log_probs=greedy_too)
    failed = False
    for manifest in args.manifest:
        scores, greedy = evaluate(transcriber, manifest, progress=sys.stderr.isatty(), greedy_too=greedy_too)
        for r in scores.results:
            if r.error:
                failed = True
                print(f"asr: error: {r.error} (scored as an empty hypothesis)", file=sys.stderr)
        readings = [(scores, _describe(model), args.report)]
        if greedy is not None:  # first, as the two commands it replaces print them
            readings.insert(0, (greedy, _describe(model, greedy=True), args.greedy_report))
        for reading, described, pattern in readings:
            _print_scores(manifest, reading, described)
            if pattern:
                report = pattern.replace("{split}", Path(manifest).stem)
                write_report(report, reading, manifest, args.model)
                print(f"report written to {report}")
    return 1 if failed else 0


def _print_scores(manifest: str, scores, described: str) -> None:
    rates, speakers = scores.rates, scores.speakers
    print(f"{manifest}: WER {100 * rates.wer:.2f} % ({rates.word_errors}/{rates.words} words)  "
          f"CER {100 * rates.cer:.2f} % ({rates.char_errors}/{rates.chars} chars)  {len(scores.results)} utterances  "
          f"[{described}]", flush=True)
    if 2 <= len(speakers) <= SPEAKER_LINES:  # a test split of a few voices; one of many goes to the report
        for name, r in speakers.items():
            print(f"  {name}: WER {100 * r.wer:.2f} % ({r.word_errors}/{r.words} words)  "
                  f"CER {100 * r.cer:.2f} %  {len(r.utterances)} utterances", flush=True)


def _describe(model, greedy: bool = False) -> str:
    """How a model reads and decodes, for evaluation lines: ``greedy``, ``VTLN 0.80-1.25 + beam 50 ...``."""
    reading = getattr(model.network, "describe", None)
    return (f"{reading()} + " if reading else "") + ("greedy" if greedy else model.decoder.describe())


def _stream(args: argparse.Namespace) -> int:
    import json
    import time

    from asr.chunked import ChunkSettings
    from asr.sources import file_blocks, pcm_blocks
    from asr.stream import EndpointRules, Final, Partial, StreamOptions, event_json

    model = _load(args)
    options = StreamOptions(chunking=ChunkSettings(args.chunk, args.right_context),
                            endpoints=EndpointRules(silence=args.endpoint_silence))
    session = model.stream(options)
    blocks = pcm_blocks(rate=args.rate) if args.input == "-" else file_blocks(args.input, not args.no_realtime)
    live = sys.stderr.isatty() and args.format == "text"  # partials redrawn in place on a terminal
    started = time.monotonic()

    def show(events) -> None:
        for e in events:
            if args.format == "json":
                print(json.dumps({**event_json(e), "at": round(time.monotonic() - started, 3)}), flush=True)
            elif isinstance(e, Final):
                if live:
                    print("\r\033[K", end="", file=sys.stderr)
                print(f"[{e.start:8.2f} {e.end:8.2f}] {e.text}", flush=True)
            elif isinstance(e, Partial):
                if live:
                    print(f"\r\033[K{e.text[-100:]}", end="", file=sys.stderr, flush=True)
                else:
                    print(f"partial: {e.text}", file=sys.stderr, flush=True)

    for block in blocks:
        show(session.accept(block))
    show(session.finish())
    return 0


def _serve(args: argparse.Namespace) -> int:
    require("serve", "asr serve")
    from asr.server.app import ServeSettings, serve  # the only way into the server from the core

    settings = ServeSettings(max_upload_mb=args.max_upload_mb, max_queue=args.max_queue, api_key=args.api_key,
                             model_id=args.model_id or Path(args.model).stem, max_sessions=args.max_sessions,
                             session_idle=args.session_idle, session_max=args.session_max, chunk=args.chunk,
                             right_context=args.right_context, head_timeout=args.head_timeout)
    options = {**_load_options(args), "decode_processes": args.decode_processes}
    serve(args.model, options, settings, host=args.host, port=args.port, workers=args.workers)
    return 0


def _export(args: argparse.Namespace) -> int:
    require("torch", "asr export", *(("onnx",) if args.format == "onnx" else ()))
    from asr import checkpoint, modelfolder
    from asr.export import export_onnx

    source = modelfolder.find(args.model)
    folder = not args.out.endswith(".onnx")
    if not folder and (args.decode_config or args.format != "onnx"):
        raise AsrError(f"{args.out}: --decode-config and --format pytorch write a model folder: give --out a "
                       f"folder, not an .onnx file")
    if folder:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    target = str(Path(args.out) / ("model.onnx" if args.format == "onnx" else "model.pt")) if folder else args.out
    if args.format == "onnx":
        info = export_onnx(source.model, target, int8=args.int8)
        print(f"exported {source.model} -> {target} ({info['megabytes']:.1f} MB, {'int8' if args.int8 else 'fp32'}, "
              f"opset {info['opset']}); largest difference from PyTorch on a test signal: {info['max_abs_diff']:.2e}")
    else:
        checkpoint.save(target, checkpoint.load(source.model))
        print(f"exported {source.model} -> {target}")
    if folder:
        config = modelfolder.write(args.out, args.decode_config or source.decode_config)
        print(f"model folder {args.out}: {', '.join(sorted(p.name for p in Path(args.out).iterdir()))}"
              + ("" if config else " (greedy: no --decode-config)"))
    return 0


def _lm_build(args: argparse.Namespace) -> int:
    from asr.lm import LMConfig, build

    config = LMConfig(order=args.order, prune=tuple(args.prune), unit=args.unit, memory=args.memory,
                      discount_fallback=not args.no_discount_fallback)
    info = build(args.text, args.out, config)
    out = Path(args.out)
    lexicon = f", lexicon {out / info['lexicon']} ({info['distinct_words']} words)" if info["lexicon"] else ""
    dropped = f", {info['dropped_sentences']} dropped for characters outside the vocabulary" \
        if info["dropped_sentences"] else ""
    print(f"{args.unit} {args.order}-gram LM from {info['sentences']} sentences ({info['words']} words{dropped}): "
          f"{out / info['lm']}{lexicon}")
    return 0


def _tune_lm(args: argparse.Namespace) -> int:
    require("torch", "asr tune-lm")
    from asr import checkpoint
    from asr.beam import lexicon_for
    from asr.modelfolder import find
    from asr.tune import tune_lm

    import torch

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else \
        "cpu" if args.device == "auto" else args.device
    model = find(args.model).model
    recognizer = checkpoint.load(model, device)
    if args.adapt:  # tune on what the decoder will read: adapted posteriors are sharper (asr.adapt)
        from asr.adapt import Adapted

        recognizer = Adapted(recognizer)

    def start(refs, greedy) -> None:
        print(f"{args.manifest}: {len(refs)} utterances; greedy WER {100 * greedy.wer:.2f} %  "
              f"CER {100 * greedy.cer:.2f} %")
        print(f"{'lm_weight':>9} {'word_score':>10} {'WER %':>7} {'CER %':>7}")

    def trial(t) -> None:
        print(f"{t.lm_weight:9g} {t.word_score:10g} {100 * t.rates.wer:7.2f} {100 * t.rates.cer:7.2f}", flush=True)

    greedy, best = tune_lm(recognizer, model, args.manifest, args.lm, out=args.out,
                           lexicon=lexicon_for(args.lm, args.lexicon, args.lexicon_free), beam_size=args.beam_size,
                           lm_weights=args.lm_weights, word_scores=args.word_scores, cache=args.cache,
                           progress=sys.stderr.isatty(), on_start=start, on_trial=trial, processes=args.processes)
    print(f"best: lm_weight {best.lm_weight:g}, word_score {best.word_score:g}: WER {100 * best.rates.wer:.2f} % "
          f"(greedy {100 * greedy.wer:.2f} %) -> {args.out}")
    return 0


def _average(args: argparse.Namespace) -> int:
    require("torch", "asr average")
    from asr import checkpoint

    paths = list(args.checkpoints)
    if args.last:
        if len(paths) != 1:
            raise AsrError("--last N takes one folder of checkpoints")
        paths = checkpoint.newest(paths[0], args.last)
    checkpoint.save(args.out, checkpoint.average(paths))
    print(f"averaged {len(paths)} checkpoint(s): {', '.join(str(p) for p in paths)} -> {args.out}")
    return 0


def _train(args: argparse.Namespace, rest: list[str]) -> int:
    require("train", "asr train")
    from asr.training.cli import train  # the only way into Lightning from the core

    train(rest)
    return 0


def _transcribe_corpus(args: argparse.Namespace, rest: list[str]) -> int:
    require("train", "asr transcribe-corpus")
    from asr.training.predict import transcribe_corpus  # Lightning's predict loop lives with the training layer

    summary = transcribe_corpus(rest)
    if summary is not None:
        _print_summary(summary)
    return 1 if summary and summary["skipped"] else 0


def _shard(args: argparse.Namespace, rest: list[str]) -> int:
    require("train", "asr shard")
    from asr.corpora.shar import main as shard  # writing shards is corpus preparation

    return shard(rest)


def _print_summary(summary: dict) -> None:
    scored = (f"; WER {100 * summary['wer']:.2f} % ({summary['word_errors']}/{summary['words']} words) on "
              f"{summary['scored']} with references") if "wer" in summary else ""
    print(f"{summary['transcribed']} of {summary['utterances']} utterances transcribed "
          f"({summary['audio_seconds'] / 3600:.2f} h){scored}")
    for s in summary["skipped"]:
        print(f"asr: error: {s['part']}: {s['id']}: {s['error']} (skipped)", file=sys.stderr)


def _merge(args: argparse.Namespace) -> int:
    from asr.bulk.merge import merge

    summary = merge(Path(args.out))
    _print_summary(summary)
    return 1 if summary["skipped"] else 0


def _filter(args: argparse.Namespace) -> int:
    from asr.bulk.pseudo import Confidence, pseudo_manifest

    rules = Confidence(min_logprob=args.min_logprob, max_no_speech=args.max_no_speech, min_words=args.min_words,
                       min_word_confidence=args.min_word_confidence)
    kept, total = pseudo_manifest(Path(args.out), Path(args.manifest), rules)
    print(f"{kept} of {total} utterances pass ({rules}) -> {args.manifest}")
    return 0


def _prepare(args: argparse.Namespace, rest: list[str]) -> int:
    require("synthetic" if args.recipe == "synthetic" else "train", f"asr prepare {args.recipe}")
    from asr.corpora.recipes import run  # the only way into corpus preparation from the core

    return run(args.recipe, rest)


def _running_args(p: argparse.ArgumentParser) -> None:
    from asr.windows import SegmentOptions

    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio seconds per batch")
    p.add_argument("--max-segment", type=float, default=SegmentOptions.max_segment,
                   help="longer files are cut at pauses into pieces of at most this many seconds "
                        f"(default {SegmentOptions.max_segment:g})")
    p.add_argument("--vtln", action="store_true",
                   help="speaker normalisation: read each utterance through the filterbank warp (0.80-1.25) the "
                        "decoder scores best; 10 forward passes and decodings, PyTorch models only")
    p.add_argument("--adapt", action="store_true",
                   help="test-time adaptation: tune the network's input layers to each utterance (10 steps of "
                        "entropy minimisation) before reading it; about 10 times the work, PyTorch models only")


def _decoding_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding (greedy unless one of these is given)")
    g.add_argument("--decode-config", help="YAML written by asr tune-lm (LM, lexicon, weights)")
    g.add_argument("--lm", help="KenLM file for beam search (lexicon.txt beside it is used)")
    g.add_argument("--lexicon", help="lexicon file (default: beside --lm)")
    g.add_argument("--lexicon-free", action="store_true", help="no lexicon (for character LMs)")
    g.add_argument("--beam-size", type=int, help="beam size (default 50 when beam searching)")
    g.add_argument("--lm-weight", type=float)
    g.add_argument("--word-score", type=float)
    g.add_argument("--beam-threshold", type=float)


def _transcribe_parser(sub) -> None:
    """`asr transcribe`."""
    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("--model", required=True, help="model.pt, a training .ckpt, or model.onnx from asr export")
    p.add_argument("files", nargs="+", help="audio or video files of any length (wav, flac, ogg, mp3, m4a, webm, "
                                             "mp4, ...), folders (searched recursively), or - for standard input")
    p.add_argument("--glob", help="in folders, only files matching this pattern (default: known audio suffixes)")
    p.add_argument("--format", choices=FORMATS, default="txt",
                   help="txt: FILE<TAB>TEXT per line; json: one JSON object per line with word timestamps; "
                        "srt / vtt: subtitles")
    p.add_argument("--output-dir", help="write one file per input here (NAME.txt/.json/.srt/.vtt)")
    p.add_argument("--nbest", type=int, help="also give the N best hypotheses (json; needs beam search)")
    _running_args(p)
    _decoding_args(p)


def _evaluate_parser(sub) -> None:
    """`asr evaluate`."""
    p = sub.add_parser("evaluate", help="WER and CER of a model on a manifest")
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True, nargs="+", help="JSON-lines manifest(s) with reference text")
    p.add_argument("--report", help="write a JSON report with per-utterance results here; with several manifests "
                                    "{split} in the name stands for each one's stem, e.g. report_{split}.json")
    p.add_argument("--greedy-report", help="also score greedy decoding of the same network pass and write its report "
                                           "here (as --report), e.g. beside an LM's: one pass for both readings")
    p.add_argument("--chunked", action="store_true",
                   help="read in the network's chunked mode, as live recognition does (--chunk, --right-context)")
    _chunk_args(p)
    _running_args(p)
    _decoding_args(p)


def _chunk_args(p: argparse.ArgumentParser) -> None:
    from asr.chunked import ChunkSettings

    g = p.add_argument_group("live recognition")
    g.add_argument("--chunk", type=float, default=ChunkSettings.chunk,
                   help=f"seconds of audio the network reads at once (default {ChunkSettings.chunk:g})")
    g.add_argument("--right-context", type=float, default=ChunkSettings.right,
                   help=f"seconds of look-ahead for each chunk (default {ChunkSettings.right:g})")


def _stream_parser(sub) -> None:
    """`asr stream`."""
    from asr.stream import EndpointRules

    p = sub.add_parser("stream", help="transcribe live: a file at real-time pace, or raw PCM from standard input")
    p.add_argument("--model", required=True, help="model.pt or a training .ckpt (or model.onnx: rereads)")
    p.add_argument("input", help="an audio file of any format, or - for raw 16-bit little-endian mono PCM on "
                                 "standard input (arecord -f S16_LE -r 16000 -c 1 | asr stream -)")
    p.add_argument("--rate", type=int, default=16000, help="sample rate of the PCM on standard input (default 16000)")
    p.add_argument("--no-realtime", action="store_true", help="read the file as fast as possible")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: final lines on standard output, partials on standard error; json: every event")
    p.add_argument("--endpoint-silence", type=float, default=EndpointRules.silence,
                   help=f"seconds of pause that end an utterance (default {EndpointRules.silence:g})")
    _chunk_args(p)
    _running_args(p)
    _decoding_args(p)


def _serve_parser(sub) -> None:
    """`asr serve`."""
    p = sub.add_parser("serve", help="an OpenAI-compatible transcription server with a web page")
    p.add_argument("--model", required=True, help="model.pt, a training .ckpt, or model.onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("ASR_API_KEY"),
                   help="require 'Authorization: Bearer KEY' (default: $ASR_API_KEY)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, each with its own model")
    p.add_argument("--head-timeout", type=float, default=10.0,
                   help="seconds a new connection has to send its request's headers before it is closed")
    p.add_argument("--decode-processes", type=int, default=os.cpu_count() or 1,
                   help="beam-search worker processes shared by every request and live session (default: one per "
                        "core; 0: decode in the request's thread, which holds up the others)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (MiB)")
    p.add_argument("--max-queue", type=int, default=16, help="requests admitted at once; more get 429")
    p.add_argument("--model-id", help="the model's name in /v1/models (default: the file's stem)")
    p.add_argument("--max-sessions", type=int, default=32, help="live WebSocket sessions at once; more are refused")
    p.add_argument("--session-idle", type=float, default=30.0,
                   help="seconds a live session may send nothing before it is closed (default 30)")
    p.add_argument("--session-max", type=float, default=3600.0, help="seconds a live session may last (default 3600)")
    _chunk_args(p)
    _running_args(p)
    _decoding_args(p)


def _export_parser(sub) -> None:
    """`asr export`."""
    p = sub.add_parser("export", help="export a model for deployment: asr export --model M --out DIR (a model "
                                      "folder) or --out model.onnx")
    p.add_argument("--model", required=True, help="model.pt, a training .ckpt, or a model folder")
    p.add_argument("--int8", action="store_true", help="quantise weights to int8 (ONNX Runtime dynamic quantisation)")
    p.add_argument("--format", choices=["onnx", "pytorch"], default="onnx",
                   help="the folder's network: onnx (read without torch; default) or pytorch (model.pt)")
    p.add_argument("--decode-config", help="put this decoding config, its LM and lexicon in the folder too")
    p.add_argument("--out", required=True, help="a folder to write the model folder into, or an .onnx file")


def _lm_parser(sub) -> None:
    """`asr lm build`."""
    p = sub.add_parser("lm", help="language models: asr lm build TEXT... --out DIR")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="build a KenLM n-gram LM (and its lexicon) from text or manifests")
    p.add_argument("text", nargs="+", help="text files (one sentence per line) or JSON-lines manifests (.jsonl)")
    p.add_argument("--out", required=True, help="output folder: lm.bin, lexicon.txt, lm.json")
    p.add_argument("--order", type=int, default=4, help="n-gram order (default 4)")
    p.add_argument("--prune", type=int, nargs="+", default=[0, 0, 1],
                   help="lmplz --prune count thresholds per order (default 0 0 1: drop singleton 3+-grams)")
    p.add_argument("--unit", choices=["word", "char"], default="word",
                   help="word: for lexicon decoding; char: for lexicon-free decoding")
    p.add_argument("--memory", default="20%", help="lmplz sorting memory (default 20%%)")
    p.add_argument("--no-discount-fallback", action="store_true",
                   help="fail instead of falling back to default discounts on tiny corpora")


def _tune_lm_parser(sub) -> None:
    """`asr tune-lm`."""
    p = sub.add_parser("tune-lm", help="tune LM weight and word score on a dev manifest, write a decoding config")
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True, help="dev manifest")
    p.add_argument("--lm", required=True, help="KenLM file (lm.bin or .arpa)")
    p.add_argument("--lexicon", help="lexicon (default: lexicon.txt beside the LM)")
    p.add_argument("--lexicon-free", action="store_true", help="decode without a lexicon (character LMs)")
    p.add_argument("--out", required=True, help="decoding config to write (YAML)")
    p.add_argument("--lm-weights", type=float, nargs="+", help="grid of LM weights (default 0 0.5 1 1.5 2 2.5 3 4)")
    p.add_argument("--word-scores", type=float, nargs="+", help="grid of word scores (default -2 -1 0 1 2 3)")
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                   help="grid points decoded at once, one worker process each (default: one per CPU core)")
    p.add_argument("--cache", help="where to cache the dev log-probabilities (default: beside --out)")
    p.add_argument("--device", default="auto")
    p.add_argument("--adapt", action="store_true",
                   help="tune for reading with --adapt (test-time adaptation of each utterance)")


def _average_parser(sub) -> None:
    """`asr average`."""
    p = sub.add_parser("average", help="average the weights of checkpoints into one model.pt")
    p.add_argument("checkpoints", nargs="+", help="checkpoint files, or one folder with --last")
    p.add_argument("--last", type=int, help="average the N newest step checkpoints of the folder")
    p.add_argument("--out", required=True, help="model.pt to write")


def _corpus_parsers(sub) -> None:
    """`asr merge` and `asr filter` (`asr transcribe-corpus` parses its own arguments)."""
    from asr.bulk.pseudo import Confidence

    sub.add_parser("transcribe-corpus", add_help=False,
                   help="transcribe manifests or folders in parts, over GPUs, nodes or CPU processes, resumably: "
                        "asr transcribe-corpus --model M --out DIR INPUT... [--trainer.devices N]")
    sub.add_parser("shard", add_help=False,
                   help="write a training manifest into Lhotse Shar shards, resumably: asr shard M.jsonl --out DIR")
    p = sub.add_parser("merge", help="join a transcribe-corpus folder's parts, in input order; score references")
    p.add_argument("out", help="the --out folder of asr transcribe-corpus")
    p = sub.add_parser("filter", help="pseudo-labels: the confident rows of a transcribe-corpus folder, as a manifest")
    p.add_argument("out", help="the --out folder of asr transcribe-corpus")
    p.add_argument("--manifest", required=True, help="the training manifest to write")
    p.add_argument("--min-logprob", type=float, default=Confidence.min_logprob,
                   help=f"mean log-probability per frame of the decoded path (default {Confidence.min_logprob:g})")
    p.add_argument("--max-no-speech", type=float, default=Confidence.max_no_speech,
                   help=f"mean blank probability (default {Confidence.max_no_speech:g})")
    p.add_argument("--min-words", type=int, default=Confidence.min_words)
    p.add_argument("--min-word-confidence", type=float, default=Confidence.min_word_confidence)


def _handoffs_parser(sub) -> None:
    """`asr train` and `asr prepare`: their own parsers read the rest of the line."""
    sub.add_parser("train", help="train with a YAML config: asr train --config C.yaml [--trainer.max_epochs N ...]",
                   add_help=False)
    p = sub.add_parser("prepare", help="prepare a recipe's data: asr prepare synthetic [options], or a recipe "
                                       "folder of your own: asr prepare path/to/recipe", add_help=False)
    p.add_argument("recipe", help="a shipped recipe's name, or a folder holding prepare.py")


HANDOFFS = {"train": _train, "prepare": _prepare, "transcribe-corpus": _transcribe_corpus, "shard": _shard}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="BiLSTM-CTC speech recognition")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_transcribe_parser, _evaluate_parser, _stream_parser, _serve_parser, _export_parser, _lm_parser,
                _tune_lm_parser, _average_parser, _corpus_parsers, _handoffs_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # train, prepare and transcribe-corpus hand their remaining arguments on, to be parsed there.
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in HANDOFFS:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    commands = {"transcribe": _transcribe, "evaluate": _evaluate, "stream": _stream, "lm": _lm_build,
                "tune-lm": _tune_lm, "average": _average, "export": _export, "serve": _serve, "merge": _merge,
                "filter": _filter}
    try:
        if args.command in HANDOFFS:
            return HANDOFFS[args.command](args, rest)
        return commands[args.command](args)
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return 130
