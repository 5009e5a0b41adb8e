"""In-memory HTTP simulators of the external APIs Hookflow calls, one module per system.

Tests and `make run` point connectors at these instead of the real services; they
are served over real HTTP by `sandbox.server` and inject faults via `sandbox.faults`.
"""
