"""Live recognition benchmarks (``make bench``, :mod:`benchmarks.run`): accuracy, latency and capacity.

- ``accuracy``: every file of ``test`` and ``test_long`` streamed through :class:`asr.stream.Stream` (as fast as
  it can be read) at each chunk setting: the WER of what the live reading said of each utterance at its end
  (``Final.streamed``) and of the finals (the utterance reread whole), against the model's offline greedy
  reading of the same files (``asr evaluate``), and the chunked mode in batch (``asr evaluate --chunked``);
- ``latency``: clients on loopback send files at real-time pace over ``/ws`` (Vosk's protocol) and
  ``/v1/realtime`` (OpenAI's): seconds from the start of speech to the first partial text (and the first
  delta), and from the end of speech to the final result, p50 and p95;
- ``memory``: the server's resident memory before, during and after rounds of sessions, some dropped
  mid-utterance: it must come back within 50 MB of where it stood after the first session;
- ``capacity``: 4, 8, 16 ... concurrent real-time streams: p95 of each reply's delay behind the audio it
  answers (from the moment the block's last sample was spoken, as a microphone delivers blocks), the largest
  count held at p95 <= 0.5 s, and the server's CPU seconds per second of audio a stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from asr.audio import SAMPLE_RATE, read_audio
from asr.chunked import ChunkSettings
from asr.manifest import read_manifest
from asr.metrics import error_rates

SETTINGS = {"640+320": ChunkSettings(0.64, 0.32), "320+160": ChunkSettings(0.32, 0.16)}
BLOCK = 0.1  # seconds per message, as a microphone delivers them
LEAD = 1.0  # seconds of silence before and after each file sent live


def _p(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return round(values[min(int(q * (len(values) - 1) + 0.5), len(values) - 1)], 3) if values else None


def accuracy(model_path: Path, data: Path, splits=("test", "test_long")) -> dict:
    import asr
    from asr.evaluate import evaluate

    out: dict = {}
    offline = asr.load(model_path, device="cpu")
    for split in splits:
        manifest = data / f"{split}.jsonl"
        utts = read_manifest(manifest)
        refs = [u.text for u in utts]
        rates = evaluate(offline.transcriber(timestamps=False), manifest)[0].rates
        row: dict = {"offline_greedy_wer": round(rates.wer, 4)}
        for name, settings in SETTINGS.items():
            chunked = asr.load(model_path, device="cpu", chunked=settings)
            batch = evaluate(chunked.transcriber(timestamps=False), manifest)[0].rates
            streamed, finals, cut = [], [], 0
            start = time.perf_counter()
            for u in utts:
                session = offline.stream(chunking=settings)
                wave = read_audio(u.audio_filepath, *u.span)
                events = []
                for i in range(0, wave.size, int(BLOCK * SAMPLE_RATE)):
                    events += session.accept(wave[i:i + int(BLOCK * SAMPLE_RATE)])
                events += session.finish()
                done = [e for e in events if type(e).__name__ == "Final"]
                cut += max(len(done) - 1, 0)
                streamed.append(" ".join(e.streamed for e in done if e.streamed))
                finals.append(" ".join(e.text for e in done if e.text))
            elapsed = time.perf_counter() - start
            audio = sum(u.duration for u in utts)
            row[name] = {"chunked_batch_wer": round(batch.wer, 4),
                         "streamed_wer": round(error_rates(refs, streamed).wer, 4),
                         "final_wer": round(error_rates(refs, finals).wer, 4),
                         "files_cut_into_utterances": cut, "stream_rtf": round(elapsed / audio, 4)}
            row[name]["relative_to_offline"] = round(row[name]["streamed_wer"] / max(rates.wer, 1e-9) - 1, 4)
        out[split] = row
    return out


# -- live clients -------------------------------------------------------------------------------------------

def _speech_bounds(wave: np.ndarray) -> tuple[float, float]:
    """Seconds of the first and last sample above 1 % of the peak: where the voice starts and stops."""
    loud = np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max())
    return (loud[0] / SAMPLE_RATE, (loud[-1] + 1) / SAMPLE_RATE) if loud.size else (0.0, 0.0)


async def _vosk_client(url: str, wave: np.ndarray) -> dict:
    """Send ``wave`` (between ``LEAD`` s of silence) at real-time pace; time the replies against the audio."""
    import websockets

    pad = np.zeros(int(LEAD * SAMPLE_RATE), np.float32)
    audio = np.concatenate([pad, wave, pad])
    first, last = _speech_bounds(wave)
    speech_start, speech_end = LEAD + first, LEAD + last
    step = int(BLOCK * SAMPLE_RATE)
    delays, first_partial, final_at = [], None, None
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": SAMPLE_RATE}}))
        start = time.monotonic()
        for i in range(0, audio.size, step):
            # As a microphone delivers it: each block once its last sample has been spoken.
            sent = min(i + step, audio.size) / SAMPLE_RATE
            await asyncio.sleep(max(start + sent - time.monotonic(), 0))
            await ws.send((np.clip(audio[i:i + step], -1, 1) * 32767).astype("<i2").tobytes())
            reply = json.loads(await ws.recv())
            now = time.monotonic() - start
            delays.append(now - sent)
            if first_partial is None and reply.get("partial"):
                first_partial = now - speech_start
            if final_at is None and reply.get("text"):
                final_at = now - speech_end
        await ws.send(json.dumps({"eof": 1}))
        reply = json.loads(await ws.recv())
        if final_at is None and reply.get("text"):
            final_at = time.monotonic() - start - speech_end
    return {"delays": delays, "first_partial": first_partial, "final": final_at, "audio": audio.size / SAMPLE_RATE}


async def _openai_client(base: str, key: str, wave: np.ndarray) -> dict:
    """The official client's realtime connection, 24 kHz audio at real-time pace: the first delta's and the
    completed transcript's times against the speech."""
    import base64

    import openai
    import soxr

    pad = np.zeros(int(LEAD * SAMPLE_RATE), np.float32)
    audio = soxr.resample(np.concatenate([pad, wave, pad]), SAMPLE_RATE, 24000).astype(np.float32)
    first, last = _speech_bounds(wave)
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    times: dict = {}
    async with client.realtime.connect(extra_query={"intent": "transcription"}, max_retries=0) as conn:
        start = time.monotonic()

        async def send():
            step = 2400
            for i in range(0, audio.size, step):
                await asyncio.sleep(max(start + min(i + step, audio.size) / 24000 - time.monotonic(), 0))
                pcm = (np.clip(audio[i:i + step], -1, 1) * 32767).astype("<i2").tobytes()
                await conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())

        sender = asyncio.create_task(send())
        while "completed" not in times:
            event = await asyncio.wait_for(conn.recv(), timeout=60)
            now = time.monotonic() - start
            if event.type.endswith("transcription.delta") and "delta" not in times:
                times["delta"] = now - (LEAD + first)
            if event.type.endswith("transcription.completed"):
                times["completed"] = now - (LEAD + last)
        sender.cancel()
    return times


def _start_server(model: Path, port: int, *args: str) -> subprocess.Popen:
    import socket

    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", str(model), "--port", str(port),
                             "--device", "cpu", "--api-key", "bench", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # loading a model (an encoder's too) on a busy machine
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start (exit status {proc.poll()})")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def live(model_path: Path, data: Path, settings: ChunkSettings = SETTINGS["640+320"], files: int = 20,
         counts=(1, 4, 8, 12, 16, 20, 24, 32)) -> dict:
    """Latency of single clients, then the capacity of 2 cores (``counts`` concurrent real-time streams)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    utts = read_manifest(data / "test.jsonl")[:files]
    waves = [read_audio(u.audio_filepath, *u.span) for u in utts]
    proc = _start_server(model_path, port, "--chunk", str(settings.chunk), "--right-context", str(settings.right),
                         "--max-sessions", str(max(counts) + 4))
    url, base = f"ws://127.0.0.1:{port}/ws?api_key=bench", f"http://127.0.0.1:{port}"
    try:
        async def one_by_one():
            vosk = [await _vosk_client(url, w) for w in waves]
            oa = [await _openai_client(base, "bench", w) for w in waves[: max(files // 2, 1)]]
            return vosk, oa

        vosk, oa = asyncio.run(one_by_one())
        out: dict = {"settings": {"chunk": settings.chunk, "right": settings.right}, "files": len(waves)}
        firsts = [r["first_partial"] for r in vosk if r["first_partial"] is not None]
        finals = [r["final"] for r in vosk if r["final"] is not None]
        deltas = [r["delta"] for r in oa if "delta" in r]
        completed = [r["completed"] for r in oa if "completed" in r]
        out["latency"] = {"first_partial_p50": _p(firsts, 0.5), "first_partial_p95": _p(firsts, 0.95),
                          "final_p50": _p(finals, 0.5), "final_p95": _p(finals, 0.95),
                          "openai_first_delta_p50": _p(deltas, 0.5), "openai_first_delta_p95": _p(deltas, 0.95),
                          "openai_completed_p50": _p(completed, 0.5), "openai_completed_p95": _p(completed, 0.95)}
        out["capacity"] = {}
        long = np.concatenate([x for w in waves[:6] for x in (w, np.zeros(SAMPLE_RATE // 2, np.float32))])
        for n in counts:
            cpu = _cpu_seconds(proc.pid)

            async def many():
                return await asyncio.gather(*[_vosk_client(url, np.roll(long, k * 7919)) for k in range(n)])

            results = asyncio.run(many())
            cpu = _cpu_seconds(proc.pid) - cpu
            delays = [d for r in results for d in r["delays"]]
            audio = sum(r["audio"] for r in results)
            out["capacity"][str(n)] = {"delay_p50": _p(delays, 0.5), "delay_p95": _p(delays, 0.95),
                                       "cpu_seconds_per_audio_second": round(cpu / audio, 4)}
            if _p(delays, 0.95) > 2.0:  # far past the target: more streams only take longer
                break
        held = [int(n) for n, r in out["capacity"].items() if r["delay_p95"] <= 0.5]
        out["streams_held_at_p95_0.5s"] = max(held) if held else 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def _rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and its children (the decoder pool's processes), in MB."""
    total, pids = 0, [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):  # a pool's processes are a thread's children
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


async def _dropped_client(url: str, wave: np.ndarray) -> None:
    """A client that goes away mid-utterance: half the audio at once, then the socket closed without eof."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": SAMPLE_RATE}}))
        half = wave[: wave.size // 2]
        step = int(BLOCK * SAMPLE_RATE)
        for i in range(0, half.size, step):
            await ws.send((np.clip(half[i:i + step], -1, 1) * 32767).astype("<i2").tobytes())
            await ws.recv()


def session_memory(model_path: Path, data: Path, rounds: int = 3, clients: int = 8) -> dict:
    """The server's resident memory (with its decoder processes) at start, after one session, at the end of each
    round of ``clients`` concurrent real-time sessions (half finish, half drop mid-utterance), and after all.
    Issue: memory per session is bounded and given back when sessions close."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    utts = read_manifest(data / "test.jsonl")[:6]
    waves = [read_audio(u.audio_filepath, *u.span) for u in utts]
    long = np.concatenate([x for w in waves for x in (w, np.zeros(SAMPLE_RATE // 2, np.float32))])
    proc = _start_server(model_path, port, "--max-sessions", str(clients + 4))
    url = f"ws://127.0.0.1:{port}/ws?api_key=bench"
    try:
        out: dict = {"clients": clients, "session_audio_seconds": round(long.size / SAMPLE_RATE, 1),
                     "start_mb": _rss_mb(proc.pid)}
        asyncio.run(_vosk_client(url, waves[0]))
        out["after_one_session_mb"] = _rss_mb(proc.pid)
        out["after_rounds_mb"] = []
        for r in range(rounds):
            async def round_of_sessions():
                await asyncio.gather(*[(_vosk_client if k % 2 else _dropped_client)(url, np.roll(long, k * 7919))
                                       for k in range(clients)])

            asyncio.run(round_of_sessions())
            time.sleep(2.0)  # the server notices the dropped sockets and ends their sessions
            out["after_rounds_mb"].append(_rss_mb(proc.pid))
        out["above_start_mb"] = round(out["after_rounds_mb"][-1] - out["start_mb"], 1)  # the measure
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def print_streaming(figures: dict) -> None:
    for split, row in figures.get("accuracy", {}).items():
        line = f"{'streaming, ' + split:38} offline greedy {100 * row['offline_greedy_wer']:.2f} %"
        for name in SETTINGS:
            r = row[name]
            line += (f"; {name}: streamed {100 * r['streamed_wer']:.2f} % ({100 * r['relative_to_offline']:+.1f} %), "
                     f"finals {100 * r['final_wer']:.2f} %")
        print(line)
    if "live" in figures:
        lat = figures["live"]["latency"]
        print(f"{'live latency (s)':38} first partial p50 {lat['first_partial_p50']} p95 {lat['first_partial_p95']}; "
              f"final p50 {lat['final_p50']} p95 {lat['final_p95']}; OpenAI first delta p50 "
              f"{lat['openai_first_delta_p50']}, completed p50 {lat['openai_completed_p50']}")
        for n, r in figures["live"]["capacity"].items():
            print(f"{'live, ' + n + ' streams':38} reply delay p50 {r['delay_p50']} s, p95 {r['delay_p95']} s; "
                  f"{r['cpu_seconds_per_audio_second']} CPU s per audio s")
        print(f"{'live, streams held (p95 <= 0.5 s)':38} {figures['live']['streams_held_at_p95_0.5s']}")
    if "memory" in figures:
        m = figures["memory"]
        print(f"{'live, server memory (MB)':38} start {m['start_mb']}, after one session {m['after_one_session_mb']}, "
              f"after each round of {m['clients']} sessions {m['after_rounds_mb']}: "
              f"{m['above_start_mb']:+} MB above the start (<= 50)")
