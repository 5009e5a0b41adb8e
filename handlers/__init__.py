"""Step operations, one module per external system.

Unlike Redash's `handlers` (HTTP views), a handler here is what a workflow step
`uses`: each module declares its operations in an OPERATIONS list and this
package assembles them into one registry.
"""

from __future__ import annotations

from engine.operations import OperationRegistry
from handlers import bigchange

CONNECTOR_MODULES = (bigchange,)


def build_registry() -> OperationRegistry:
    """Every operation of every connector; a duplicate name is a programming error."""
    return OperationRegistry(op for module in CONNECTOR_MODULES for op in module.OPERATIONS)
