"""Golden files: outputs of official code, kept to check our models against."""
