"""solidarity: keep the names of people jailed for their work in public view."""

__version__ = "0.1.0"
