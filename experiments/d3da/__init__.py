"""3D-Deformable ("Cross-Modal Learning with 3D Deformable Attention for Action Recognition", supplementary): its
tables as specs and its RGB + pose task (``tables``), its attention figures A2-A5 and their measure (``figures``).
What is reproduced and the choices made: README.md beside them."""

from . import figures, tables  # noqa: F401  (registers the tables, the task and the figures)
