"""Pydantic models with no I/O: settings, workflow and source specs, API payloads."""
