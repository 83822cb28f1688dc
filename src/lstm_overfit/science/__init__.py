"""Measurements, judges, claims catalogue, series diagnosis. Imports datasets and below, never the engine."""
