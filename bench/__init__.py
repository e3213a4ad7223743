"""Benchmarks. Each module is a script: run it with .venv/bin/python bench/<name>.py."""
