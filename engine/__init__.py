"""The engine: loading, rendering, running, queueing and storing workflows.

It knows no particular API; connectors live in handlers/ and reach the engine
only through the operation registry.
"""
