"""Benchmarks and the CPU model server: tools run from a checkout (`python -m bench`, `python -m bench.generate`,
`python -m bench.model_server`), not part of the importable library."""
