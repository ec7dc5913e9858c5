"""Readers of the authors' released checkpoints (their key layouts) as state dicts of our models."""
