"""Golden files of the released-checkpoint readers (models/released): see README.md here."""
