"""Corpus preparation, used by the recipes and never by inference or training code.

``download`` / ``archive`` (resumable verified downloads, safe extraction), ``layouts`` (each corpus' own file
layout read as typed rows), ``preparation`` (the shared steps from rows to manifests), ``recipes`` (finding and
running ``asr prepare NAME``), ``tts`` / ``tts_assets`` / ``text_sources`` / ``synthetic`` (the offline synthetic
corpus), ``dsp`` (signal effects shared by synthesis and training augmentation) and ``system`` (Debian packages
it needs).
"""
