"""ASH (Attention-based Saliency Hashing) encoder plugin for ash-search.

Synthetic data and loaders (``ash.synthetic``, ``ash.data``: numpy and
Pillow only), the networks and losses, training, evaluation and ONNX export.
See ``plugin/README.md``.
"""
