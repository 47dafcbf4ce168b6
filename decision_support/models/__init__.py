"""Trained models: versioned JSON artifacts (coefficients + model card), loaded once."""
