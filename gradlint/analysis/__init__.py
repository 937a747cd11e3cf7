"""Shared libcst analysis: import resolution, the training-step model. No rule logic here."""
