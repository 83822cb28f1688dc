"""Process settings, atomic outputs, progress, MLflow, the team stack. Imports only errors."""
