"""Landform: a self-hosted landing-page platform."""

__version__ = "0.1.0"
