// An AudioWorklet that hands the microphone's samples to the page as 16-bit PCM, about 100 ms at a time.
"use strict";
class PcmSender extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Int16Array(Math.round(sampleRate / 10));
    this.filled = 0;
  }
  process(inputs) {
    const channels = inputs[0];
    if (!channels || !channels.length) return true;
    const n = channels[0].length;
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (const c of channels) v += c[i];  // mono: the channels' mean
      v = Math.max(-1, Math.min(1, v / channels.length));
      this.buffer[this.filled++] = v < 0 ? v * 32768 : v * 32767;
      if (this.filled === this.buffer.length) {
        this.port.postMessage(this.buffer.buffer.slice(0));
        this.filled = 0;
      }
    }
    return true;
  }
}
registerProcessor("pcm-sender", PcmSender);
