"""reports package."""

