"""Corpus preparation, used by the recipes and never by inference or training code.

``download`` / ``archive`` (resumable verified downloads, safe extraction), ``layouts`` (each corpus' own file
layout read as typed rows), ``preparation`` (the shared steps from rows to manifests), ``recipes`` (finding and
running ``asr prepare NAME``), ``tts`` / ``synthetic`` (the offline synthetic corpus) and ``system`` (Debian
packages it needs).
"""
