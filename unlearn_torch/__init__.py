"""unlearn_torch: the thin layer that runs an ``unlearn_theory`` plan on CPU or GPU.

Not built yet. It will take every noise scale and step count from an
:class:`unlearn_theory.UnlearningPlan` (never deciding them itself) and write a certificate of
what really ran (docs/architecture.md §2). The verification runner already accepts a torch training
loop as a sampler (:class:`verification.runner.TorchLoopSampler`).
"""
