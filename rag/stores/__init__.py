"""Vector stores behind one protocol (base.py): Qdrant's embedded engine (edge.py) and Qdrant server (server.py)."""
