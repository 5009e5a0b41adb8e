"""Sender presets: `preset: <name>` in sources.yaml makes a complete source from a secret.

One module per sender; each declares PRESET (see base.Preset). The registry is
an explicit dict, so a preset is added by writing its module and listing it here.
"""

from __future__ import annotations

from engine.presets import gravityforms, jotform, quickbooks, typeform, webflow, xero, zapier
from engine.presets.base import PayloadError, Preset

PRESETS: dict[str, Preset] = {
    module.PRESET.name: module.PRESET for module in (typeform, jotform, webflow, gravityforms, zapier, xero, quickbooks)
}

# A source verified as one of these senders gets that sender's handling even without `preset:`.
PRESET_FOR_VERIFY = {"xero": "xero", "intuit": "quickbooks"}

__all__ = ["PRESETS", "PRESET_FOR_VERIFY", "PayloadError", "Preset"]
