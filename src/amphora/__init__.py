"""Amphora: a self-hostable podcast hosting hub."""

__version__ = "0.1.0"
