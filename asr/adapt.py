"""Test-time adaptation: each utterance is read by a copy of the network whose input layers were first tuned to
it, without labels, by making the network surer of its own output (entropy minimisation).

Why: a model trained on few voices is unsure on a voice it never heard, and that unsureness is measurable on
the utterance alone. SUTA (Lin et al., "Listen, Adapt, Better WER: Source-free Single-utterance Test-time
Adaptation for Automatic Speech Recognition", Interspeech 2022) takes a few gradient steps on one utterance that
lower the mean entropy of the CTC posteriors, then decodes it; on wav2vec 2.0 it cut WER under accents and noise.
Here the steps tune only the layers nearest the input — the convolutional front and the first BiLSTM layer —
where a voice's and a channel's differences enter, so what the upper layers learnt of spelling stays as trained.
The weights are restored after every utterance: nothing carries from one file to the next.

It costs ``steps`` forward and backward passes per utterance on top of the reading (about 10 times the
network's work), needs gradients through the network, so a PyTorch model, and reads one utterance at a time.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from asr.checkpoint import Recognizer
from asr.errors import AsrError

# The best on the demo's dev split against fewer and more steps, a higher rate and more layers (docs/decoding.md).
STEPS = 10  # Adam steps per utterance
LR = 1e-3  # Adam learning rate


def front_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters adapted: the convolutional subsampling and the first BiLSTM layer, both directions."""
    lstm = model.lstm
    return [*model.subsample.parameters(), *lstm.forward_layers[0].parameters(),
            *lstm.backward_layers[0].parameters()]


def mean_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the entropy (nats) of the posteriors of ``(frames, vocab)`` logits."""
    log_p = logits.log_softmax(dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1).mean()


class Adapted:
    """Wraps a PyTorch :class:`asr.checkpoint.Recognizer` as an :class:`asr.transcribe.Network` that adapts its
    input layers to each waveform (``steps`` Adam steps at ``lr`` on the posteriors' mean entropy) before reading
    it. ``warps``: optionally, something with ``pick(waves) -> warps`` (:class:`asr.vtln.SpeakerNormalized`)
    that chooses each waveform's filterbank warp first; the adaptation then starts from that reading.
    """

    def __init__(self, recognizer: Recognizer, steps: int = STEPS, lr: float = LR, warps=None):
        if not isinstance(recognizer, Recognizer):  # it tunes the network's weights: an ONNX graph has none to tune
            raise AsrError("test-time adaptation needs a PyTorch model (model.pt or a .ckpt), not an ONNX file")
        if steps < 1 or lr <= 0:
            raise AsrError(f"test-time adaptation needs steps >= 1 and a positive learning rate, got {steps}, {lr}")
        self.recognizer = recognizer
        self.steps, self.lr = steps, lr
        self.warps = warps
        self.vocab = recognizer.vocab
        self.frame_seconds = recognizer.frame_seconds
        # (before, after) per waveform of the last run (not kept longer: a server reads without end)
        self.entropy: list[tuple[float, float]] = []
        # Adapting tunes the shared network's weights in place: two threads at once (a server's sessions) would
        # step on each other's weights and gradients, so utterances adapt one at a time.
        self._lock = threading.Lock()

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities after adapting
        to it. One waveform at a time: each gets its own weights."""
        warps = self.warps.pick(waves) if self.warps is not None else [1.0] * len(waves)
        self.entropy = []
        with self._lock:
            return [self._adapt_and_read(w, warp) for w, warp in zip(waves, warps)]

    # Gradients are needed even when the caller reads under torch.inference_mode(): tensors made there cannot
    # enter autograd, so the features too are computed with inference mode off.
    @torch.inference_mode(False)
    @torch.enable_grad()
    def _adapt_and_read(self, wave: np.ndarray, warp: float) -> np.ndarray:
        model = self.recognizer.model
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        with torch.no_grad():
            feats, frames = self.recognizer.feats(x, torch.tensor([x.shape[1]]), warp)
        params = front_parameters(model)
        saved = [p.detach().clone() for p in params]
        trainable = [p.requires_grad for p in model.parameters()]
        was_training = model.training
        model.eval()  # no dropout; BatchNorm keeps its training statistics, only its scale and shift adapt
        try:
            for p in model.parameters():
                p.requires_grad_(False)
            for p in params:
                p.requires_grad_(True)
            optimizer = torch.optim.Adam(params, lr=self.lr)
            for step in range(self.steps):
                log_probs, out_frames = model(feats, frames)
                loss = mean_entropy(log_probs[0, : int(out_frames[0])])
                if step == 0:
                    before = float(loss.detach())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                log_probs, out_frames = model(feats, frames)
            out = log_probs[0, : int(out_frames[0])]
            self.entropy.append((before, float(mean_entropy(out))))
            return out.float().cpu().numpy()
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
            for p, t in zip(model.parameters(), trainable):
                p.requires_grad_(t)
            model.train(was_training)

    def describe(self) -> str:
        reading = f"{self.warps.describe()} + " if self.warps is not None else ""
        return f"{reading}adapted ({self.steps} steps)"
