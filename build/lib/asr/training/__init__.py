"""Training with PyTorch Lightning: everything that imports Lightning lives here, and nothing outside imports it.

``module`` (the LightningModule: CTC, optimiser, schedule), ``dataset`` / ``sampler`` / ``datamodule`` (manifests to
duration-bucketed batches), ``spec_augment`` / ``wave_augment`` (training-only augmentation), ``callbacks``
(exported model, curves), ``rng`` (generator states for exact resume) and ``cli`` (``asr train``). Defaults of
every run: ``defaults.yaml``. The training benchmark is outside the package, in ``benchmarks/``.
"""
