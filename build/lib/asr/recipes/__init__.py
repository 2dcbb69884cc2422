"""The recipes, one folder per corpus (``prepare.py``, ``config.yaml``, ``README.md``), shipped as ``asr.recipes``.

``asr prepare NAME`` runs ``asr.recipes.NAME.prepare.main``; see :mod:`asr.corpora.recipes`.
"""
