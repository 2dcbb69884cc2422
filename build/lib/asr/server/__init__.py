"""``asr serve``: the OpenAI-compatible HTTP server over the inference core.

``app`` (FastAPI routes, OpenAI's shapes and errors, admission, time limits, cancellation), ``batcher`` (dynamic
batching of concurrent requests into shared forward passes) and ``web/`` (the page served at ``/``). The core
never imports this package; it imports the core's Python API and transcriber.
"""
