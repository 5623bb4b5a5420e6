"""What every other part of rag builds on: settings, errors, shared types, text utilities."""
