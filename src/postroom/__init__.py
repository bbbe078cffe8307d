"""postroom: a self-hosted SMTP relay with bounce handling."""

__version__ = "0.1.0"
