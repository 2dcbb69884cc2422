"""Live recognition over WebSockets: the official ``openai`` client's realtime connection and a Vosk-protocol
client against ``asr serve`` on loopback, words arriving while the audio is still being spoken; and every bad
input (malformed or unknown events, odd or oversized audio, rates it does not take, clients that vanish or
never speak, too many sessions, a wrong key) answered in the protocol's way while the server goes on."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
import pytest
import soxr

from asr.audio import read_audio

openai = pytest.importorskip("openai")
websockets = pytest.importorskip("websockets")

from websockets.sync.client import connect  # noqa: E402

from tests.test_serve import start_server  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "live-key"
GAP = np.zeros(16000, np.float32)


@pytest.fixture(scope="module")
def server(streaming_model):
    proc, url = start_server(streaming_model, "--api-key", KEY, "--max-sessions", "2", "--session-idle", "3",
                             "--chunk", "0.32", "--right-context", "0.16")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def talk(speech):
    """Two known sentences with pauses around them: audio at 16 kHz, each one's end (seconds), the texts."""
    parts = [read_audio(p) for p, _ in speech[:2]]
    audio = np.concatenate([GAP, parts[0], GAP, parts[1], GAP])
    ends = [(GAP.size + parts[0].size) / 16000, (2 * GAP.size + parts[0].size + parts[1].size) / 16000]
    return audio, ends, [t for _, t in speech[:2]]


def ws_url(server: str, path: str, key: str | None = KEY) -> str:
    return server.replace("http", "ws") + path + (f"?api_key={key}" if key else "")


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_the_official_client_gets_deltas_while_the_person_speaks(server, talk):
    audio, ends, texts = talk
    audio24 = soxr.resample(audio, 16000, 24000).astype(np.float32)

    async def session():
        client = openai.AsyncOpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0)
        events = []
        async with client.realtime.connect(extra_query={"intent": "transcription"}, max_retries=0) as conn:
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 600}}}})
            start = time.monotonic()

            async def send():  # at real-time pace, 100 ms at a time, as a microphone would
                step = 2400
                for i in range(0, audio24.size, step):  # each block once its last sample was spoken
                    await asyncio.sleep(max(start + (i + step) / 24000 - time.monotonic(), 0))
                    await conn.input_audio_buffer.append(audio=base64.b64encode(pcm16(audio24[i:i + step])).decode())

            sender = asyncio.create_task(send())
            while sum(e[1].type.endswith("transcription.completed") for e in events) < 2:
                event = await asyncio.wait_for(conn.recv(), timeout=30)
                events.append((time.monotonic() - start, event))
            await sender
        return events

    events = asyncio.run(session())
    types = [e.type for _, e in events]
    assert types[0] == "session.created" and "session.updated" in types
    assert types.count("input_audio_buffer.speech_started") == 2 and types.count("input_audio_buffer.committed") == 2
    completed = [e for _, e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert [e.transcript for e in completed] == texts
    for k, (text, end) in enumerate(zip(texts, ends)):
        item = completed[k].item_id
        deltas = [(t, e.delta) for t, e in events if e.type.endswith("transcription.delta") and e.item_id == item]
        assert deltas and deltas[0][0] < end  # the first words arrived before the speaker had finished
        assert text.startswith("".join(d for _, d in deltas))  # deltas only append
        done = next(t for t, e in events if e.type.endswith("completed") and e.item_id == item)
        assert done - end < 2.0


def test_a_vosk_client_gets_partials_then_results(server, talk):
    audio, _, texts = talk
    replies = []
    with connect(ws_url(server, "/ws")) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 16000, "words": True}}))
        pcm = pcm16(audio)
        for i in range(0, len(pcm), 6400):
            ws.send(pcm[i:i + 6400])
            replies.append(json.loads(ws.recv()))  # one reply per message
        ws.send(json.dumps({"eof": 1}))
        replies.append(json.loads(ws.recv()))
        with pytest.raises(websockets.ConnectionClosedOK):
            ws.recv()
    results = [r for r in replies if "text" in r and r["text"]]
    assert [r["text"] for r in results] == texts
    assert all(set(w) == {"conf", "end", "start", "word"} for r in results for w in r["result"])
    assert [w["word"] for w in results[0]["result"]] == texts[0].split()
    first_result = replies.index(results[0])
    assert any(r.get("partial") for r in replies[:first_result])  # partial text before the result


def realtime(server: str, key: str | None = KEY):
    return connect(ws_url(server, "/v1/realtime", key) + "&intent=transcription" if key else
                   ws_url(server, "/v1/realtime", key) + "?intent=transcription")


def errors_after(ws, message) -> dict:
    ws.send(message)
    while True:
        event = json.loads(ws.recv(timeout=10))
        if event["type"] == "error":
            return event["error"]


def test_bad_realtime_input_gets_error_events_and_the_session_goes_on(server, talk):
    audio, _, texts = talk
    with realtime(server) as ws:
        assert json.loads(ws.recv())["type"] == "session.created"
        assert errors_after(ws, "{not json")["code"] == "invalid_json"
        assert errors_after(ws, json.dumps({"type": "response.create"}))["code"] == "unknown_event"
        assert errors_after(ws, json.dumps([1, 2]))["code"] == "invalid_event"
        assert errors_after(ws, b"\x00\x01garbage")["code"] == "invalid_event"
        odd = base64.b64encode(b"\x00\x01\x02").decode()
        assert "even number" in errors_after(ws, json.dumps({"type": "input_audio_buffer.append", "audio": odd}))["message"]
        bad = errors_after(ws, json.dumps({"type": "input_audio_buffer.append", "audio": "***"}))
        assert bad["code"] == "invalid_value" and bad["param"] == "audio"
        rate = errors_after(ws, json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 44100}}}}}))
        assert rate["param"] == "session.audio.input.format.rate" and "44100" in rate["message"]
        assert errors_after(ws, json.dumps({"type": "input_audio_buffer.commit"}))["code"] == \
            "input_audio_buffer_commit_empty"
        # Audio with no session.update at all: OpenAI's defaults (24 kHz, server VAD) apply.
        audio24 = soxr.resample(audio, 16000, 24000).astype(np.float32)
        assert appended_transcripts(ws, pcm16(audio24), 48000, 2) == texts


def appended_transcripts(ws, pcm: bytes, piece: int, count: int, no_errors: bool = False) -> list[str]:
    """Send ``pcm`` in appends of ``piece`` bytes, then wait for ``count`` completed transcripts."""
    for i in range(0, len(pcm), piece):
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + piece]).decode()}))
    transcripts = []
    while len(transcripts) < count:
        event = json.loads(ws.recv(timeout=30))
        assert not (no_errors and event["type"] == "error"), event
        if event["type"] == "conversation.item.input_audio_transcription.completed":
            transcripts.append(event["transcript"])
    return transcripts


def health(server: str) -> dict:
    import urllib.request

    return json.loads(urllib.request.urlopen(server + "/health", timeout=5).read())


def test_limits_keys_and_clients_that_vanish(server, talk):
    # A wrong or missing key: the handshake is refused.
    for key in ("nope", None):
        with pytest.raises(websockets.InvalidStatus):
            with realtime(server, key):
                pass
    # An oversized message closes that session with 1009; the server goes on.
    with realtime(server) as ws:
        ws.recv()
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (2 << 20)}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009
    # More sessions than allowed: the third is told why and closed with 1013 ("try again later").
    with realtime(server) as a, connect(ws_url(server, "/ws")):
        a.recv()
        with realtime(server) as c:
            event = json.loads(c.recv(timeout=5))
            assert event["type"] == "error" and event["error"]["code"] == "session_limit"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                c.recv(timeout=5)
            assert closed.value.rcvd.code == 1013
    # A session that never sends audio is closed after --session-idle (3 s), with a reason.
    with realtime(server) as ws:
        ws.recv()
        started = time.monotonic()
        event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "error" and event["error"]["code"] == "session_ended"
        with pytest.raises(websockets.ConnectionClosedOK):
            ws.recv(timeout=5)
        assert 2.5 < time.monotonic() - started < 6
    # A client that vanishes mid-utterance: its place is given back.
    ws = connect(ws_url(server, "/ws"))
    ws.send(pcm16(talk[0][: 16000 * 2]))
    ws.recv()
    ws.socket.close()  # no close frame, no eof: gone
    for _ in range(50):
        if health(server)["live_sessions"] == 0:
            break
        time.sleep(0.1)
    body = health(server)
    assert body["live_sessions"] == 0 and body["live_sessions_refused"] >= 1
    with connect(ws_url(server, "/ws")) as ws:  # and the next one is served
        ws.send(json.dumps({"config": {"sample_rate": 12345}}))
        assert "sample_rate" in json.loads(ws.recv())["error"]
        ws.send(b"\x00")
        assert "even number" in json.loads(ws.recv())["error"]
        ws.send(json.dumps({"eof": 1}))
        assert json.loads(ws.recv()) == {"text": "", "result": []}


def nested(depth: int) -> str:
    return '{"type": "session.update", "session": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


def session_update(detection=None, fmt=None, session=None) -> str:
    audio = {"input": {k: v for k, v in (("turn_detection", detection), ("format", fmt)) if v is not None}}
    return json.dumps({"type": "session.update", "session": session if session is not None else
                       {"type": "transcription", "audio": audio}})


# Each hostile message the realtime route once dropped sessions on (no error event, no close frame), with the
# field its error must name.
HOSTILE_REALTIME = [
    (nested(50_000), None),  # RecursionError in the JSON parser
    (session_update(session="x"), "session"),  # a string where an object is due
    (json.dumps({"type": "session.update", "session": {"audio": "x"}}), "session.audio"),
    (session_update(detection="x"), "session.audio.input.turn_detection"),
    (session_update(fmt={"type": "audio/pcm", "rate": "24000"}), "session.audio.input.format.rate"),
    (session_update(fmt={"type": "audio/pcm", "rate": None}), "session.audio.input.format.rate"),
    (session_update(detection={"prefix_padding_ms": "300"}), "session.audio.input.turn_detection.prefix_padding_ms"),
    ('{"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 1e999}}}}}',
     "session.audio.input.format.rate"),  # infinity
    ('{"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": NaN}}}}}',
     "session.audio.input.format.rate"),
    (session_update(detection={"prefix_padding_ms": 1e308}), "session.audio.input.turn_detection.prefix_padding_ms"),
    (session_update(detection={"prefix_padding_ms": 3_600_000}),  # an hour of audio held: past the bound
     "session.audio.input.turn_detection.prefix_padding_ms"),
    ('{"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"silence_duration_ms": NaN}}}}}',
     "session.audio.input.turn_detection.silence_duration_ms"),
    (json.dumps({"type": "input_audio_buffer.append", "audio": 5}), "audio"),
    (json.dumps({"type": "input_audio_buffer.commit", "event_id": 7}), "event_id"),
]


def test_hostile_realtime_messages_get_error_events_and_the_session_still_transcribes(server, talk):
    audio, _, texts = talk
    with realtime(server) as ws:
        assert json.loads(ws.recv())["type"] == "session.created"
        for message, param in HOSTILE_REALTIME:
            error = errors_after(ws, message)
            assert error["type"] == "invalid_request_error" and error["param"] == param, (message[:80], error)
        ws.send(session_update(fmt={"type": "audio/pcm", "rate": 16000}))
        assert appended_transcripts(ws, pcm16(audio), 32000, 2, no_errors=True) == texts


HOSTILE_VOSK = [
    '{"config": ' + '[' * 50_000 + ']' * 50_000 + '}',
    json.dumps({"config": "x"}),
    json.dumps({"config": {"sample_rate": "16000"}}),
    '{"config": {"sample_rate": 1e999}}',
    '{"config": {"sample_rate": NaN}}',
    json.dumps({"config": {"sample_rate": None}}),
    json.dumps({"config": {"words": "yes"}}),
]


def test_hostile_vosk_messages_get_errors_and_the_session_still_transcribes(server, talk):
    audio, _, texts = talk
    with connect(ws_url(server, "/ws")) as ws:
        for message in HOSTILE_VOSK:
            ws.send(message)
            reply = json.loads(ws.recv(timeout=10))
            assert set(reply) == {"error"}, (message[:80], reply)
        ws.send(json.dumps({"config": {"sample_rate": 16000.0, "words": False}}))
        pcm, results = pcm16(audio), []
        for i in range(0, len(pcm), 16000):
            ws.send(pcm[i:i + 16000])
            reply = json.loads(ws.recv(timeout=30))
            assert "error" not in reply, reply
            if reply.get("text"):
                results.append(reply["text"])
        ws.send(json.dumps({"eof": 1}))
        last = json.loads(ws.recv(timeout=30))
        results += [last["text"]] if last.get("text") else []
        assert " ".join(results) == " ".join(texts) and "result" not in last


def test_the_warm_up_reads_quiet_through_every_worker_before_the_first_client(tiny_model):
    import threading

    import asr.vad
    from asr.api import load
    from asr.server.live import LiveSessions

    model = load(tiny_model, device="cpu")
    threads, make = set(), model.stream

    def stream(options):
        threads.add(threading.current_thread().name)
        return make(options)

    model.stream = stream
    live = LiveSessions(model)
    try:
        live.warm_up()
        assert len(threads) == live.workers and all(t.startswith("asr-live") for t in threads)
        assert asr.vad._session.cache_info().currsize == 1  # the VAD's model is loaded, not left to the first client
    finally:
        live.close()
