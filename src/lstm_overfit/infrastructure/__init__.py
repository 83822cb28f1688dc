"""Process settings, warm server, atomic outputs, progress, MLflow, team stack. Imports only errors."""
