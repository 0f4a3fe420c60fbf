"""ASH (Attention-based Saliency Hashing) encoder plugin for ash-search.

This package holds the parts of the encoder plugin that need no deep-learning
framework: the deterministic synthetic fundus generator (``ash.synthetic``)
and the loaders for the labelled data sets users bring (``ash.data``).
"""

__all__ = ["data", "synthetic"]
