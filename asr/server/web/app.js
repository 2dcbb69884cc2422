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

// A word as a span: shaded by its confidence, its times kept for seeking (a click plays from it).
function wordSpan(w) {
  const span = document.createElement("span");
  span.className = "w";
  span.textContent = w.word;
  span.dataset.start = w.start;
  span.dataset.end = w.end;
  const c = w.confidence === undefined ? 1 : w.confidence;
  span.style.opacity = (0.35 + 0.65 * c).toFixed(2);
  span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s, confidence ${(100 * c).toFixed(0)} %`;
  return span;
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
      p.append(wordSpan(words[k++]), " ");
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
