"""X-ViT ("Space-time Mixing Attention for Video Transformer", supplementary): its tables as specs (``tables``).
What is reproduced and the choices made: README.md beside them."""

from . import tables  # noqa: F401  (registers the tables)
