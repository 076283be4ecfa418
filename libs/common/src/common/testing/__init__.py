"""Helpers for the project's own tests: the local stack, service processes, polling."""
