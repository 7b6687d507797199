"""dispatch: audit task dispatch simulator and optimizer."""

__version__ = "0.1.0"
