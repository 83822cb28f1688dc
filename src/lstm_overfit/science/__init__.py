"""Measurements, judges, the claims catalogue. Imports datasets and below, never the engine."""
