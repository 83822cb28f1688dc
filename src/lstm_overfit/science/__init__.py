"""Measurements, judges, the claims catalogue, the series diagnosis. Imports datasets and
below, never the engine."""
