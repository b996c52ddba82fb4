"""Content Arena: adversarial MLOps for content moderation."""

__version__ = "0.1.0"
