"""Data runs train on: format, generated, stocks, sentences. Imports params, infrastructure."""
