"""Data runs train on: format, generated, stocks, sentences, series. Imports params, infrastructure."""
