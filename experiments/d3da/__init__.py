"""3D-Deformable ("Cross-Modal Learning with 3D Deformable Attention for Action Recognition", supplementary): its
tables as specs and its RGB + pose task (``tables``). What is reproduced and the choices made: README.md beside
them."""

from . import tables  # noqa: F401  (registers the tables and the task)
