"""RAR: retrieval-augmented conversational movie recommendation with RL post-training."""

__version__ = "0.1.0"
