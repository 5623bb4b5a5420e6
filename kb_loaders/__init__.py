"""Loaders that turn real drug sources into one typed model (see model.py)."""
