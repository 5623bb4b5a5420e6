"""Answer schema, extractive builder, generation and verification."""
