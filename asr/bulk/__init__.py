"""Transcribing a corpus in parts, resumably: the work of ``asr transcribe-corpus`` (run by
:mod:`asr.training.predict` on Lightning, one process or many), ``asr merge`` and ``asr filter``.

- the *plan* (:mod:`asr.bulk.plan`): every input (manifest lines, audio files under folders) in order, each with
  an id, cut into parts of about ``part_hours`` of audio. The same inputs give the same plan, on every rank and on
  every rerun; a *part file* ``part-NNNNN.jsonl`` per part, one row per utterance, is written to a temporary name
  and renamed when the part is complete: a rerun skips the parts whose file exists and redoes the others;
- the *merge* (:mod:`asr.bulk.merge`): every part's rows in input order, each id once, scored against references
  where the inputs had them (``merged.jsonl``, ``summary.json``);
- *pseudo-labels* (:mod:`asr.bulk.pseudo`): rows whose confidence passes thresholds, as a training manifest.

"Part", not "shard": shards are Lhotse Shar's training archives (``asr shard``, :mod:`asr.training.shards`).
Needs no torch: the plan and merge run anywhere.
"""
