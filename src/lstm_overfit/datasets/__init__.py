"""Data runs train on: format, generated, stocks, sentences, users' series.
Imports params, infrastructure."""
