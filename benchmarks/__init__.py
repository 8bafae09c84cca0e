"""Benchmarks: each `python -m benchmarks.<name>` starts its own services, measures, writes
`benchmarks/results/<name>.json` and updates its section of `docs/performance.md`."""
