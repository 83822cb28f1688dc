"""What people read: DVC metrics and plots, figures, the report. Imports science and below."""
