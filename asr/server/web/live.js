// Live mode: the microphone's PCM goes to /ws (Vosk's protocol) as it is captured. One partial node shows the
// utterance being spoken and is updated in place; each final result is added above it as a paragraph of words and
// the partial node is emptied. When the session stops, the finals and the recording become the page's transcript
// as an upload's would (show() in app.js), for playback and the downloads.
"use strict";
let live = null;

// The finals as the upload's verbose transcript is shaped: what show() and the downloads read.
function liveBody(finals, duration) {
  const words = finals.flatMap((f) => f.words);
  return {
    task: "transcribe", language: "english", duration, text: finals.map((f) => f.text).filter(Boolean).join(" "),
    segments: finals.map((f, i) => ({ id: i, start: f.start, end: f.end, text: f.text })),
    words: words.map(({ word, start, end }) => ({ word, start, end })), x_asr: { words },
  };
}

// The transcript box for a new session: empty but for the partial node.
function liveView(session) {
  $("result").hidden = false;
  $("player").hidden = true;  // the recording plays once it is over
  $("processing").textContent = "live";
  $("rtf").textContent = "–";
  const box = $("transcript");
  box.textContent = "";
  session.partial = document.createElement("p");
  session.partial.className = "partial";
  box.append(session.partial);
}

function liveTick(session) {
  $("duration").textContent = `${((performance.now() - session.started) / 1000).toFixed(1)} s`;
}

function onPartial(session, text) {
  session.partial.textContent = text;
  liveTick(session);
}

function onFinal(session, body) {
  const words = body.result || [];
  if (body.text || words.length) {
    const final = { text: body.text, words, start: words.length ? words[0].start : 0,
                    end: words.length ? words[words.length - 1].end : 0 };
    session.finals.push(final);
    const p = document.createElement("p");
    if (words.length) words.forEach((w) => p.append(wordSpan(w), " "));
    else p.textContent = final.text;
    session.partial.before(p);
  }
  session.partial.textContent = "";
  liveTick(session);
}

async function startLive() {
  // The audio graph is ready before the microphone opens, so nothing said after it opens is lost while it loads.
  let context;
  try {
    context = new AudioContext({ sampleRate: 16000 });  // the browser resamples the microphone to 16 kHz
  } catch (e) {
    context = new AudioContext();  // the server resamples what it is told
  }
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-sender");
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (e) {
    context.close();
    status(`No microphone: ${e.message}`, true);
    return;
  }
  const source = context.createMediaStreamSource(media);
  const key = new URLSearchParams(location.search).get("key");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws${key ? `?api_key=${encodeURIComponent(key)}` : ""}`);
  socket.binaryType = "arraybuffer";
  const chunks = [];
  const recorder = new MediaRecorder(media);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  const session = live = { media, context, socket, recorder, chunks, finals: [], started: performance.now() };
  liveView(session);
  // Listening starts now, not when the connection opens: what is said meanwhile waits here, so a slow connection
  // never loses the first words.
  const waiting = [];
  node.port.onmessage = (e) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(e.data);
    else if (socket.readyState === WebSocket.CONNECTING) waiting.push(e.data);
  };
  source.connect(node);
  recorder.start();
  socket.onopen = () => {
    socket.send(JSON.stringify({ config: { sample_rate: context.sampleRate, words: true } }));
    waiting.splice(0).forEach((pcm) => socket.send(pcm));
    status("Listening … speak, then click Stop.");
  };
  socket.onmessage = (e) => {
    const body = JSON.parse(e.data);
    if (body.error) status(body.error, true);
    else if (body.partial !== undefined) onPartial(session, body.partial);
    else if (body.text !== undefined) onFinal(session, body);
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
