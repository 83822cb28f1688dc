"""The one exception type a stage turns into a one-line message and a non-zero exit."""


class StageError(Exception):
    """Bad input or an unusable source: the stage stops before writing anything."""
