"""The ``asr`` command. Each subcommand parses its arguments and hands off to the library."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from asr.errors import AsrError


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _transcribe(args: argparse.Namespace) -> int:
    from asr import checkpoint
    from asr.transcribe import Transcriber

    transcriber = Transcriber(checkpoint.load(args.model, _device(args.device)), max_batch_seconds=args.batch_seconds)
    failed = 0
    for r in transcriber.transcribe(args.files):
        if r.error:
            failed += 1
            print(f"asr: error: {r.error}", file=sys.stderr, flush=True)
            continue
        if args.format == "json":
            print(json.dumps({"file": r.path, "text": r.hypothesis.text, "duration": round(r.duration, 3)},
                             ensure_ascii=False), flush=True)
        else:
            print(f"{r.path}\t{r.hypothesis.text}", flush=True)
    if failed:
        print(f"asr: {failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace) -> int:
    from asr import checkpoint
    from asr.evaluate import evaluate, write_report
    from asr.transcribe import Transcriber

    transcriber = Transcriber(checkpoint.load(args.model, _device(args.device)), max_batch_seconds=args.batch_seconds)
    rates, results = evaluate(transcriber, args.manifest, progress=sys.stderr.isatty())
    for r in results:
        if r.error:
            print(f"asr: error: {r.error} (scored as an empty hypothesis)", file=sys.stderr)
    print(f"{args.manifest}: WER {100 * rates.wer:.2f} % ({rates.word_errors}/{rates.words} words)  "
          f"CER {100 * rates.cer:.2f} % ({rates.char_errors}/{rates.chars} chars)  {len(results)} utterances")
    if args.report:
        write_report(args.report, rates, results, args.manifest, args.model)
        print(f"report written to {args.report}")
    return 1 if any(r.error for r in results) else 0


def _train(args: argparse.Namespace, rest: list[str]) -> int:
    from asr.train import train

    train(rest)
    return 0


def _recipes_dir() -> Path:
    env = os.environ.get("ASR_RECIPES")
    if env:
        return Path(env)
    here = Path.cwd() / "recipes"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "recipes"


def _prepare(args: argparse.Namespace, rest: list[str]) -> int:
    root = _recipes_dir()
    script = root / args.recipe / "prepare.py"
    if not script.is_file():
        known = sorted(p.parent.name for p in root.glob("*/prepare.py"))
        raise AsrError(f"unknown recipe {args.recipe!r} (no {script}); recipes: {', '.join(known) or 'none'}")
    spec = importlib.util.spec_from_file_location(f"recipe_{args.recipe}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.main(rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="BiLSTM-CTC speech recognition")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("--model", required=True, help="model.pt or a training .ckpt")
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--format", choices=["txt", "json"], default="txt",
                   help="txt: FILE<TAB>TEXT per line; json: one JSON object per line")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio seconds per batch")

    p = sub.add_parser("evaluate", help="WER and CER of a model on a manifest")
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True, help="JSON-lines manifest with reference text")
    p.add_argument("--report", help="write a JSON report with per-utterance results here")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-seconds", type=float, default=200.0)

    sub.add_parser("train", help="train with a YAML config: asr train --config C.yaml [--trainer.max_epochs N ...]",
                   add_help=False)
    p = sub.add_parser("prepare", help="prepare a recipe's data: asr prepare synthetic [options]", add_help=False)
    p.add_argument("recipe")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # train and prepare hand their remaining arguments to LightningCLI and the recipe, which parse them.
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("train", "prepare"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "transcribe":
            return _transcribe(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "train":
            return _train(args, rest)
        return _prepare(args, rest)
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return 130
