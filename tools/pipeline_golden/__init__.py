"""Golden files of the data and optimizer pipelines, made with the authors' own code (one maker per codebase)."""
