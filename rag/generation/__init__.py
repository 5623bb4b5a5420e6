"""Generators behind one Protocol (rag.generation.base.Generator); rag.components.make_generator picks one."""
