"""Tests the claims of "Why is my simple LSTM not overfitting?"; layers in pyproject.toml."""
