"""Benchmarks: scripts that print speed and quality figures and assert nothing (they are not tests).

Each runs from the project root as a module, so that it imports the project as the scripts do:
``.venv/bin/python -m bench.bench_quality --help``.
"""
