"""QuickBooks Online / Intuit webhooks (reference §4): batches of entity changes, intuit-signature.

Two body formats, both supported: the legacy `{"eventNotifications": [{realmId,
dataChangeEvent: {entities: [...]}}]}` and the CloudEvents array that replaces
it. Every entity change is its own Hookflow event, deduplicated on its own
(CloudEvents `id`; legacy realmId:name:id:operation:lastUpdated), so Intuit's
redelivery of a batch creates nothing new and a batch that mixes old and new
changes stores only the new ones.

Both formats normalise to one shape, so a workflow written against today's
format keeps working after Intuit's migration: `event.data` =
{realm_id, entity, entity_id, operation, occurred_at} and the event type is
`qbo.<entity>.<operation>` in CloudEvents' words (`qbo.customer.updated`).
"""

from __future__ import annotations

from typing import Any

from engine.presets.base import Headers, PayloadError, Preset, require_mapping, text_field

SENDER = "quickbooks"
# Legacy operation names -> CloudEvents' past tense.
_PAST = {"create": "created", "update": "updated", "delete": "deleted", "merge": "merged", "void": "voided"}


def items(parsed: Any) -> list[Any]:
    """Legacy: one item per entity, carrying its realmId. CloudEvents: the array's elements."""
    if isinstance(parsed, list):
        return [require_mapping(event, SENDER, "a CloudEvent") for event in parsed]
    notifications = require_mapping(parsed, SENDER, "the body").get("eventNotifications")
    if not isinstance(notifications, list):
        raise PayloadError(f"{SENDER} delivery is neither a CloudEvents array nor has eventNotifications")
    found = []
    for notification in notifications:
        notification = require_mapping(notification, SENDER, "an eventNotifications element")
        change = require_mapping(notification.get("dataChangeEvent"), SENDER, "dataChangeEvent")
        entities = change.get("entities")
        if not isinstance(entities, list):
            raise PayloadError(f"{SENDER} delivery: dataChangeEvent has no entities list")
        realm = text_field(notification, "realmId", SENDER)
        found += [{"realmId": realm, **require_mapping(entity, SENDER, "an entity")} for entity in entities]
    return found


def wrap(item: Any) -> Any:
    """One element as a delivery of its own format: a one-element CloudEvents array, or one notification."""
    if _is_cloudevent(item):
        return [item]
    entity = {key: value for key, value in item.items() if key != "realmId"}
    return {"eventNotifications": [{"realmId": item["realmId"], "dataChangeEvent": {"entities": [entity]}}]}


def _is_cloudevent(item: dict[str, Any]) -> bool:
    return "specversion" in item


def _cloudevent_parts(item: dict[str, Any]) -> tuple[str, str]:
    """`qbo.invoice.created.v1` -> ("invoice", "created")."""
    parts = text_field(item, "type", SENDER).split(".")
    if len(parts) < 3:
        raise PayloadError(f"{SENDER} delivery: CloudEvent type {item['type']!r} is not qbo.<entity>.<operation>")
    return parts[1].lower(), parts[2].lower()


def normalise(item: Any) -> dict[str, Any]:
    if _is_cloudevent(item):
        entity, operation = _cloudevent_parts(item)
        return {
            "realm_id": text_field(item, "intuitaccountid", SENDER),
            "entity": entity,
            "entity_id": text_field(item, "intuitentityid", SENDER),
            "operation": operation,
            "occurred_at": item.get("time"),
        }
    operation = text_field(item, "operation", SENDER).lower()
    data = {
        "realm_id": item["realmId"],
        "entity": text_field(item, "name", SENDER).lower(),
        "entity_id": text_field(item, "id", SENDER),
        "operation": _PAST.get(operation, operation),
        "occurred_at": item.get("lastUpdated"),
    }
    if item.get("deletedId"):  # a Merge names the entity merged away
        data["deleted_id"] = str(item["deletedId"])
    return data


def event_type(item: Any, headers: Headers) -> str:
    data = normalise(item)
    return f"qbo.{data['entity']}.{data['operation']}"


def event_id(item: Any, headers: Headers) -> str:
    if _is_cloudevent(item):
        return text_field(item, "id", SENDER)
    fields = ("realmId", "name", "id", "operation")
    return ":".join([*(text_field(item, name, SENDER) for name in fields), str(item.get("lastUpdated", ""))])


PRESET = Preset(
    name=SENDER,
    summary="QuickBooks Online webhooks (legacy and CloudEvents batches, intuit-signature, 200 within 3 s)",
    verify={"type": "intuit"},
    source={"ack": {"status": 200}, "max_body_bytes": 5 * 1024 * 1024},
    items=items,
    normalise=normalise,
    event_type=event_type,
    event_id=event_id,
    batched=True,
    wrap=wrap,
)
