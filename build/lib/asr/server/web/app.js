// The page talks to the server's OpenAI-compatible endpoint, nothing else: no CDN, it works offline.
"use strict";
const $ = (id) => document.getElementById(id);
let last = null;  // {name, body} of the last transcript, for the downloads
let recorder = null;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function transcribe(blob, name) {
  status(`Transcribing ${name} …`);
  const form = new FormData();
  form.append("file", blob, name);
  form.append("model", "asr");
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  form.append("timestamp_granularities[]", "segment");
  form.append("x_asr_confidence", "true");
  const started = performance.now();
  let response;
  try {
    response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form });
  } catch (e) {
    status(`The server could not be reached (${e.message}).`, true);
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    status(body.error ? body.error.message : `HTTP ${response.status}`, true);
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  last = { name: name.replace(/\.[^.]*$/, "") || "transcript", body };
  show(body, blob, seconds);
  status(`Done: ${name}.`);
}

function show(body, blob, seconds) {
  $("result").hidden = false;
  $("duration").textContent = `${body.duration.toFixed(1)} s`;
  $("processing").textContent = `${seconds.toFixed(2)} s`;
  $("rtf").textContent = body.duration > 0 ? (seconds / body.duration).toFixed(3) : "–";
  const player = $("player");
  player.hidden = !blob;
  if (blob) player.src = URL.createObjectURL(blob);
  const words = (body.x_asr && body.x_asr.words) || body.words || [];
  const box = $("transcript");
  box.textContent = "";
  if (!words.length) {
    box.textContent = body.text || "(no speech found)";
    return;
  }
  // One paragraph per segment; each word a span shaded by its confidence, clickable to seek.
  const segments = body.segments && body.segments.length ? body.segments : [{ start: 0, end: Infinity }];
  let k = 0;
  for (const seg of segments) {
    const p = document.createElement("p");
    while (k < words.length && (words[k].start < seg.end || seg === segments[segments.length - 1])) {
      const w = words[k++];
      const span = document.createElement("span");
      span.className = "w";
      span.textContent = w.word;
      span.dataset.start = w.start;
      span.dataset.end = w.end;
      const c = w.confidence === undefined ? 1 : w.confidence;
      span.style.opacity = (0.35 + 0.65 * c).toFixed(2);
      span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s, confidence ${(100 * c).toFixed(0)} %`;
      p.append(span, " ");
    }
    if (p.childNodes.length) box.append(p);
  }
}

$("transcript").addEventListener("click", (e) => {
  const span = e.target.closest(".w");
  if (!span) return;
  const player = $("player");
  player.currentTime = parseFloat(span.dataset.start);
  player.play().catch(() => {});
  document.querySelectorAll(".w.now").forEach((s) => s.classList.remove("now"));
  span.classList.add("now");
});

$("player").addEventListener("timeupdate", () => {
  const t = $("player").currentTime;
  document.querySelectorAll(".w").forEach((s) => {
    s.classList.toggle("now", t >= parseFloat(s.dataset.start) && t < parseFloat(s.dataset.end));
  });
});

$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (f) transcribe(f, f.name);
});

const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault();
  drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault();
  drop.classList.remove("over");
}));
drop.addEventListener("drop", (e) => {
  const f = e.dataTransfer.files[0];
  if (f) transcribe(f, f.name);
});
drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") $("file").click();
});

$("record").addEventListener("click", async () => {
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    status(`No microphone: ${e.message}`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);  // browsers record webm/opus (Safari: mp4/aac); the server reads both
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    $("record").classList.remove("on");
    $("record").textContent = "● Record";
    const type = recorder.mimeType || "audio/webm";
    const ext = type.includes("mp4") ? "m4a" : type.includes("ogg") ? "ogg" : "webm";
    transcribe(new Blob(chunks, { type }), `recording.${ext}`);
  };
  recorder.start();
  $("record").classList.add("on");
  $("record").textContent = "■ Stop";
  status("Recording … click Stop when done.");
});

// Downloads, built from the verbose transcript: subtitles get one cue per segment.
function stamp(t, sep) {
  const ms = Math.max(0, Math.round(t * 1000));
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${sep}${pad(ms % 1000, 3)}`;
}

// Cues as the server cuts them (asr.output.cues): within a segment, at most 42 characters and 6 s, a new cue
// after a pause of over 1 s.
function cues(body) {
  const words = (body.x_asr && body.x_asr.words) || body.words || [];
  const segs = body.segments && body.segments.length ? body.segments : [{ start: 0, end: Infinity }];
  const out = [];
  for (const seg of segs) {
    let group = [];
    const close = () => {
      if (group.length) out.push([group[0].start, group[group.length - 1].end, group.map((w) => w.word).join(" ")]);
      group = [];
    };
    for (const w of words.filter((w) => w.start >= seg.start - 1e-3 && w.start < seg.end)) {
      if (group.length) {
        const text = group.map((g) => g.word).concat(w.word).join(" ");
        if (text.length > 42 || w.end - group[0].start > 6 || w.start - group[group.length - 1].end > 1) close();
      }
      group.push(w);
    }
    close();
  }
  return out;
}

function render(format, body) {
  if (format === "txt") return body.text + "\n";
  if (format === "json") return JSON.stringify(body, null, 1) + "\n";
  const list = cues(body);
  if (format === "srt") return list.map(([a, b, t], i) => `${i + 1}\n${stamp(a, ",")} --> ${stamp(b, ",")}\n${t}\n`).join("\n");
  return "WEBVTT\n\n" + list.map(([a, b, t]) => `${stamp(a, ".")} --> ${stamp(b, ".")}\n${t}\n`).join("\n");
}

document.querySelectorAll(".downloads button").forEach((b) => b.addEventListener("click", () => {
  if (!last) return;
  const format = b.dataset.format;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([render(format, last.body)], { type: "text/plain" }));
  a.download = `${last.name}.${format}`;
  document.body.append(a);
  a.click();
  a.remove();
}));

// Live: the microphone's PCM goes to /ws (Vosk's protocol) as it is captured; partial text shows while the
// person speaks and each utterance's final result replaces it. The recording is kept for playback and the
// downloads, built from the finals as the upload's verbose transcript is.
let live = null;

function liveBody(finals, duration) {
  const words = finals.flatMap((f) => f.words);
  return {
    task: "transcribe", language: "english", duration, text: finals.map((f) => f.text).filter(Boolean).join(" "),
    segments: finals.map((f, i) => ({ id: i, start: f.start, end: f.end, text: f.text })),
    words: words.map(({ word, start, end }) => ({ word, start, end })), x_asr: { words },
  };
}

function showLive(session, partial) {
  const finals = session.finals;
  $("result").hidden = false;
  const box = $("transcript");
  const body = liveBody(finals, 0);
  if (body.words.length) show(body, null, 0);
  else box.textContent = body.text;
  $("player").hidden = true;  // the recording plays once it is over
  $("duration").textContent = `${((performance.now() - session.started) / 1000).toFixed(1)} s`;
  $("processing").textContent = "live";
  $("rtf").textContent = "–";
  if (partial) {
    const p = document.createElement("p");
    p.className = "partial";
    p.textContent = partial;
    box.append(p);
  }
}

async function startLive() {
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (e) {
    status(`No microphone: ${e.message}`, true);
    return;
  }
  let context;
  try {
    context = new AudioContext({ sampleRate: 16000 });  // the browser resamples the microphone to 16 kHz
  } catch (e) {
    context = new AudioContext();  // the server resamples what it is told
  }
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const source = context.createMediaStreamSource(media);
  const node = new AudioWorkletNode(context, "pcm-sender");
  const key = new URLSearchParams(location.search).get("key");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${key ? `?api_key=${encodeURIComponent(key)}` : ""}`);
  socket.binaryType = "arraybuffer";
  const chunks = [];
  const recorder = new MediaRecorder(media);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  const session = live = { media, context, socket, recorder, chunks, finals: [], started: performance.now() };
  socket.onopen = () => {
    socket.send(JSON.stringify({ config: { sample_rate: context.sampleRate, words: true } }));
    node.port.onmessage = (e) => { if (socket.readyState === WebSocket.OPEN) socket.send(e.data); };
    source.connect(node);
    recorder.start();
    status("Listening … speak, then click Stop.");
  };
  socket.onmessage = (e) => {
    const body = JSON.parse(e.data);
    if (body.error) { status(body.error, true); return; }
    if (body.partial !== undefined) { showLive(session, body.partial); return; }
    if (body.text !== undefined && (body.text || (body.result && body.result.length))) {
      session.finals.push({ text: body.text, words: body.result || [],
                            start: body.result && body.result.length ? body.result[0].start : 0,
                            end: body.result && body.result.length ? body.result[body.result.length - 1].end : 0 });
    }
    showLive(session, "");
  };
  socket.onclose = () => finishLive();
  socket.onerror = () => status("The live connection failed.", true);
  $("live").classList.add("on");
  $("live").textContent = "■ Stop";
}

function stopLive() {
  if (!live) return;
  live.context.close();
  live.media.getTracks().forEach((t) => t.stop());
  if (live.socket.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify({ eof: 1 }));
  else finishLive();
}

function finishLive() {
  if (!live) return;
  const session = live;
  live = null;
  $("live").classList.remove("on");
  $("live").textContent = "● Live";
  const seconds = (performance.now() - session.started) / 1000;
  const done = () => {
    const blob = new Blob(session.chunks, { type: session.recorder.mimeType || "audio/webm" });
    const body = liveBody(session.finals, seconds);
    last = { name: "live", body };
    show(body, blob, seconds);
    $("processing").textContent = "live";
    status("Done: live transcript.");
  };
  if (session.recorder.state === "recording") {
    session.recorder.onstop = done;
    session.recorder.stop();
  } else done();
}

$("live").addEventListener("click", () => (live ? stopLive() : startLive()));
