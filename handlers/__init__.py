"""Step operations, one module per external system.

Unlike Redash's `handlers` (HTTP views), a handler here is what a workflow step
`uses`: each module declares its operations in an OPERATIONS list and this
package assembles them into one registry.
"""

from __future__ import annotations

from engine import builtins, xref
from engine.operations import OperationRegistry
from handlers import additiv, bigchange, bigchange_webservice, lightening

CONNECTOR_MODULES = (bigchange, bigchange_webservice, lightening, additiv)


def build_registry() -> OperationRegistry:
    """The engine's built-ins (core.*, xref.*) and every connector's operations; a duplicate name is a bug."""
    connectors = (op for module in CONNECTOR_MODULES for op in module.OPERATIONS)
    return OperationRegistry([*builtins.OPERATIONS, *xref.OPERATIONS, *connectors])
