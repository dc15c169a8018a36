"""Root-cause hypotheses: the evidence engine that ranks them without a model."""
