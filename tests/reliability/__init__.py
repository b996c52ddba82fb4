"""Reliability and security tests: faults, load and hostile input."""
