"""Inference benchmarks (``make bench``, :mod:`benchmarks.run`): long recordings, ONNX export, and the server under load (``exp/bench.json``).

- ``long_audio``: an hour made of ``test`` utterances joined by pauses, and ten minutes of them with no pause
  at all (each utterance's own silences trimmed, so only the window fallback can cut it): ``asr transcribe``'s
  wall time, real-time factor and peak memory (a child process each), and the WER of the whole file against
  the same audio cut at the true utterance boundaries and read one by one (and, without pauses, in groups of
  up to 12 s read whole: the same joins between utterances, no window seam);
- ``onnx``: fp32 and int8 exports on the ``test`` split: WER and real-time factor against PyTorch's;
- ``server``: ``asr serve`` on loopback with 8 clients x 25 requests of 2-10 s files (throughput against the
  same requests one at a time, p50/p95 latency), a 3 s request sent while a 10-minute file is transcribed,
  and 64 clients against a queue of 16 (429s with Retry-After, no 5xx, peak memory).
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE, read_audio
from asr.manifest import read_manifest
from asr.metrics import error_rates
from benchmarks.child import peak_from

CHILD = str(Path(__file__).with_name("child.py"))  # runs `asr ARGS` in a child process, reporting its peak memory


def _trim(wave: np.ndarray) -> np.ndarray:
    """An utterance without its own leading and trailing silence: from 50 ms before the first sample above 1 %
    of the peak to 50 ms after the last (a harder cut, e.g. at 5 %, clips quiet consonants and costs 12 WER
    points on its own)."""
    loud = np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max())
    margin = int(0.05 * SAMPLE_RATE)
    return wave[max(loud[0] - margin, 0): loud[-1] + 1 + margin] if loud.size else wave


def build_recording(manifest: Path, minutes: float, pause: float, out: Path) -> tuple[list[str], list[np.ndarray]]:
    """Join the manifest's utterances (cycling) into ``minutes`` of audio with ``pause`` seconds of silence
    between them (0: each trimmed of its own silence too, so the speech never stops); returns each utterance's
    transcript and its audio as written (the recording holds them in order, the pauses between)."""
    utts = read_manifest(manifest)
    texts, waves, total, i = [], [], 0, 0
    with sf.SoundFile(str(out), "w", SAMPLE_RATE, 1, subtype="PCM_16", format="FLAC") as f:
        while total < minutes * 60 * SAMPLE_RATE:
            u = utts[i % len(utts)]
            i += 1
            wave = read_audio(u.audio_filepath, *u.span)
            if pause == 0:
                wave = _trim(wave)
            f.write(wave)
            texts.append(u.text)
            waves.append(wave)
            total += wave.size
            if pause:
                f.write(np.zeros(int(pause * SAMPLE_RATE), np.float32))
                total += int(pause * SAMPLE_RATE)
    return texts, waves


def run_cli(args: list[str]) -> tuple[str, float, float]:
    """Run ``asr ARGS`` in a child process: its standard output, wall seconds and peak RSS (MB)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, CHILD, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"asr {' '.join(args)} failed: {proc.stderr[-500:]}")
    return proc.stdout, elapsed, peak_from(proc.stderr)


def _pieces_wer(model, texts: list[str], waves: list[np.ndarray], group_seconds: float | None) -> float:
    """WER of a recording's utterances read apart from the rest of it: one by one (``group_seconds`` None), or
    consecutive utterances joined in groups of at most ``group_seconds`` (only for a recording without pauses,
    where joined they are its audio), each group read whole: cut at the true junctions, no window seam."""
    groups: list[list[int]] = []
    held = 0  # samples in the last group
    for k, wave in enumerate(waves):
        if groups and group_seconds and (held + wave.size) / SAMPLE_RATE <= group_seconds:
            groups[-1].append(k)
            held += wave.size
        else:
            groups.append([k])
            held = wave.size
    refs = [" ".join(texts[k] for k in g) for g in groups]
    hyps = [model.transcribe(np.concatenate([waves[k] for k in g]), timestamps=False).text for g in groups]
    return error_rates(refs, hyps).wer


def long_audio(model: Path, manifest: Path, work: Path, scale: float = 1.0) -> dict:
    """``asr transcribe`` on an hour with pauses (segments cut at them) and ten minutes without any (the window
    fallback), against the same audio read in pieces cut at the true utterance boundaries."""
    import asr

    recognizer = asr.load(model, device="cpu")
    out = {}
    for name, minutes, pause in (("hour_with_pauses", 60.0 * scale, 0.5), ("ten_minutes_no_pauses", 10.0 * scale, 0.0)):
        path = work / f"{name}.flac"
        texts, waves = build_recording(manifest, minutes, pause, path)
        stdout, elapsed, rss = run_cli(["transcribe", "--model", str(model), "--device", "cpu", "--format", "json",
                                        "--output-dir", str(work), str(path)])
        result = json.loads((work / f"{name}.json").read_text())
        hypothesis, reference = result["text"], " ".join(texts)
        duration = sf.info(str(path)).duration
        out[name] = {"audio_seconds": round(duration, 1), "wall_seconds": round(elapsed, 2),
                     "rtf": round(elapsed / duration, 5), "peak_rss_mb": round(rss),
                     "segments": len(result["segments"]),
                     "wer": round(error_rates([reference], [hypothesis]).wer, 4),
                     "wer_one_by_one": round(_pieces_wer(recognizer, texts, waves, None), 4),
                     "words_reference": len(reference.split()), "words_hypothesis": len(hypothesis.split())}
        if pause == 0:  # the same speech, no seams: what the joins between utterances cost this model
            out[name]["wer_pieces_read_whole"] = round(_pieces_wer(recognizer, texts, waves, 12.0), 4)
    return out


def onnx(model: Path, manifest: Path, work: Path) -> dict:
    """WER and RTF of the PyTorch model and its fp32 and int8 exports on ``manifest`` (in-process, after a
    warm-up, so imports and loading are not counted): ``rtf`` for the whole evaluation (reading and decoding the
    files included, the same work for all three), ``network_rtf`` for the recogniser alone (waveforms in memory
    -> log-probabilities, the same length-sorted batches for all three)."""
    import asr
    from asr.batching import pack_sorted
    from asr.evaluate import evaluate
    from asr.export import export_onnx

    out: dict = {}
    paths = {"pytorch": model, "onnx_fp32": work / "model.onnx", "onnx_int8": work / "model.int8.onnx"}
    export_onnx(model, paths["onnx_fp32"])
    export_onnx(model, paths["onnx_int8"], int8=True)
    waves = [read_audio(u.audio_filepath, *u.span) for u in read_manifest(manifest)]
    lengths = [w.size for w in waves]
    batches = pack_sorted(sorted(range(len(waves)), key=lengths.__getitem__), lengths, 200.0 * SAMPLE_RATE)
    audio = sum(lengths) / SAMPLE_RATE
    for name, path in paths.items():
        m = asr.load(path, device="cpu")
        transcriber = m.transcriber(timestamps=False)
        evaluate(transcriber, manifest)  # warm-up
        start = time.perf_counter()
        rates = evaluate(transcriber, manifest)[0].rates
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        for batch in batches:
            m.network.run([waves[i] for i in batch])
        network = time.perf_counter() - start
        out[name] = {"wer": round(rates.wer, 4), "rtf": round(elapsed / audio, 5),
                     "network_rtf": round(network / audio, 5), "megabytes": round(path.stat().st_size / 1e6, 1)}
    out["int8_speedup_vs_pytorch"] = round(out["pytorch"]["rtf"] / out["onnx_int8"]["rtf"], 2)
    out["int8_network_speedup_vs_pytorch"] = round(out["pytorch"]["network_rtf"] / out["onnx_int8"]["network_rtf"], 2)
    return out


# -- the server ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, data: bytes, name: str, timeout: float = 600) -> tuple[int, float, dict]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'.encode()
            + data + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nasr\r\n"
                     f"--{boundary}--\r\n".encode())
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/audio/transcriptions", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start, dict(response.getheaders())
    except (OSError, http.client.HTTPException):
        return 0, time.perf_counter() - start, {}
    finally:
        conn.close()


def _clips(manifest: Path, work: Path, n: int) -> list[tuple[bytes, float]]:
    """``n`` files of 2-10 s (several test utterances each), as uploaded bytes and seconds."""
    utts = read_manifest(manifest)
    rng = np.random.default_rng(0)
    clips, k = [], 0
    for i in range(n):
        target, parts = rng.uniform(2, 10), []
        while sum(p.size for p in parts) / SAMPLE_RATE < target - 1:
            parts += [read_audio(utts[k % len(utts)].audio_filepath), np.zeros(4000, np.float32)]
            k += 1
        wave = np.concatenate(parts)[: int(10 * SAMPLE_RATE)]
        path = work / f"clip{i}.flac"
        sf.write(str(path), wave, SAMPLE_RATE)
        clips.append((path.read_bytes(), wave.size / SAMPLE_RATE))
    return clips


def _concurrent(port: int, jobs: list[tuple[bytes, float]], clients: int) -> tuple[float, list[tuple[int, float, dict]]]:
    results: list = [None] * len(jobs)
    cursor = iter(range(len(jobs)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            results[i] = _post(port, jobs[i][0], f"clip{i}.flac")

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, results


def server(model: Path, manifest: Path, work: Path, scale: float = 1.0) -> dict:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, CHILD, "serve", "--model", str(model), "--device", "cpu", "--port", str(port),
                             "--max-queue", "16", "--max-upload-mb", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        clips = _clips(manifest, work, max(int(25 * scale), 4))
        jobs = clips * 8  # 8 clients x 25 requests
        audio = sum(d for _, d in jobs)
        _concurrent(port, clips[:4], 4)  # warm-up
        sequential_time, sequential = _concurrent(port, clips, 1)
        sequential_audio = sum(d for _, d in clips)
        concurrent_time, results = _concurrent(port, jobs, 8)
        latencies = sorted(t for _, t, _ in results)
        out = {
            "load": {"requests": len(jobs), "errors": sum(1 for c, _, _ in results if c != 200),
                     "throughput_audio_seconds_per_second": round(audio / concurrent_time, 1),
                     "sequential_audio_seconds_per_second": round(sequential_audio / sequential_time, 1),
                     "p50_latency_s": round(statistics.median(latencies), 3),
                     "p95_latency_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3)},
        }
        out["load"]["speedup"] = round(out["load"]["throughput_audio_seconds_per_second"]
                                       / out["load"]["sequential_audio_seconds_per_second"], 2)
        # A 3 s request while a 10-minute file is being transcribed.
        long_path = work / "ten_minutes_server.flac"
        build_recording(manifest, 10.0 * scale, 0.5, long_path)
        short = next(c for c in clips if 2.5 <= c[1] <= 4.5)
        holder: dict = {}
        t = threading.Thread(target=lambda: holder.update(r=_post(port, long_path.read_bytes(), "long.flac")))
        t.start()
        time.sleep(1.0)  # the long one is under way
        code, latency, _ = _post(port, short[0], "short.flac")
        t.join()
        out["short_during_long"] = {"status": code, "latency_s": round(latency, 3), "short_seconds": round(short[1], 2),
                                    "long_status": holder["r"][0], "long_latency_s": round(holder["r"][1], 2)}
        # Overload: 64 clients, a queue of 16.
        _, burst = _concurrent(port, [clips[i % len(clips)] for i in range(64)], 64)
        codes = [c for c, _, _ in burst]
        out["overload"] = {"clients": 64, "queue": 16, "ok": codes.count(200), "rejected_429": codes.count(429),
                           "server_errors_5xx": sum(1 for c in codes if c >= 500), "failed_connections": codes.count(0),
                           "retry_after_on_every_429": all("retry-after" in {k.lower() for k in h}
                                                           for c, _, h in burst if c == 429)}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    peak = peak_from(err)
    out["server_peak_rss_mb"] = round(peak) if peak is not None else None
    return out


def run_all(model: Path, manifest: Path, work: Path | None = None, scale: float = 1.0) -> dict:
    """Every figure; ``scale`` shrinks the recordings and the request counts (tests run it small)."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmp = Path(tmp)
        results = {"long_audio": long_audio(model, manifest, tmp, scale)}
        results["onnx"] = onnx(model, manifest, tmp)
        results["server"] = server(model, manifest, tmp, scale)
    return results


def print_inference(inf: dict) -> None:
    for name, r in inf["long_audio"].items():
        whole = f", {100 * r['wer_pieces_read_whole']:.2f} % in <= 12 s pieces" if "wer_pieces_read_whole" in r else ""
        print(f"{name:38} {r['audio_seconds'] / 60:.0f} min in {r['wall_seconds']:.1f} s: RTF {r['rtf']:.4f} "
              f"(<= 0.01), peak {r['peak_rss_mb']} MB (<= 1500), {r['segments']} segments, WER "
              f"{100 * r['wer']:.2f} % vs {100 * r['wer_one_by_one']:.2f} % one by one{whole}")
    o = inf["onnx"]
    print(f"{'onnx':38} WER pytorch {100 * o['pytorch']['wer']:.2f} %, fp32 {100 * o['onnx_fp32']['wer']:.2f} %, "
          f"int8 {100 * o['onnx_int8']['wer']:.2f} %; RTF {o['pytorch']['rtf']:.4f} / {o['onnx_fp32']['rtf']:.4f} / "
          f"{o['onnx_int8']['rtf']:.4f}: int8 {o['int8_speedup_vs_pytorch']:.2f} x PyTorch (>= 1.5); network alone "
          f"{o['pytorch']['network_rtf']:.4f} / {o['onnx_fp32']['network_rtf']:.4f} / {o['onnx_int8']['network_rtf']:.4f}: "
          f"int8 {o['int8_network_speedup_vs_pytorch']:.2f} x")
    s = inf["server"]
    load = s["load"]
    print(f"{'server, 8 clients x 25 requests':38} {load['errors']} errors, {load['throughput_audio_seconds_per_second']} "
          f"audio s/s = {load['speedup']} x one at a time (>= 3), p50 {load['p50_latency_s']} s, "
          f"p95 {load['p95_latency_s']} s")
    sd = s["short_during_long"]
    print(f"{'server, 3 s during a 10-minute file':38} {sd['latency_s']} s (< 2 s)")
    ov = s["overload"]
    print(f"{'server, 64 clients, queue 16':38} {ov['ok']} ok, {ov['rejected_429']} x 429 (Retry-After: "
          f"{ov['retry_after_on_every_429']}), {ov['server_errors_5xx']} x 5xx; peak {s['server_peak_rss_mb']} MB")
