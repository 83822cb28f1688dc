"""Process settings, the warm server, atomic outputs, progress, MLflow, the team stack. Imports only errors."""
