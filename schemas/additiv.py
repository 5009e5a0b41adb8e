"""Input models for additiv DFS client-API operations, field names exactly as the docs spell them.

Source: shared/api-docs/additiv-client-contacts.txt (the Redoc page's parameter tables);
paths and what the page leaves open are in shared/reference/additiv-api.md. A model holds
the path parameters (contactId, changeRequestId, legalEntityId, exportJobId) together
with the request DTO's fields; the handler puts each where it belongs. Unknown fields
are refused, so a misspelt `contactID` fails validation instead of vanishing.
"""

from __future__ import annotations

from datetime import timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

INT32_MAX = 2_147_483_647

Int32Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
# A timezone is required (whose clock is a naive time on?); sent in UTC with a Z, as the docs' examples are.
UtcDateTime = Annotated[AwareDatetime, AfterValidator(lambda moment: moment.astimezone(timezone.utc))]
SortOrder = Literal["Ascending", "Descending"]
Paths = Annotated[list[str], Field(description="Only results touching at least one of these details paths.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered(model: BaseModel, *pairs: tuple[str, str]) -> None:
    for start, end in pairs:
        low, high = getattr(model, start), getattr(model, end)
        if low is not None and high is not None and high < low:
            raise ValueError(f"{end} is before {start}")


class _Contact(_In):
    contactId: Int32Id


class _Paged(_In):
    page: int | None = Field(None, ge=1)
    pageSize: int | None = Field(None, ge=1)
    sortOrder: SortOrder | None = None


# --- contacts -----------------------------------------------------------------------------------


class ExternalConnection(_In):
    """A contact's id in another system. externalIds are unique across all contacts, whatever the system."""

    system: str = Field(min_length=1)
    externalId: str = Field(min_length=1)


class ContactCreate(_In):
    """Creates a contact (path inferred). With `externalConnection`, the contact is first looked up by it
    and returned (`created: false`) if it exists; a new contact is then linked to it, so a retried or
    repeated create never makes a second contact. `externalConnection` needs a `username`: if a create's
    answer is lost, the unlinked contact cannot be looked up, and its unique username is what makes
    additiv refuse a second one (the step then fails saying the contact was probably created by an
    earlier attempt). Fails with UsernameNotUnique if the username is taken."""

    contactTypeId: Int32Id
    username: str | None = Field(
        None, min_length=1, description="Unique across all contacts; required with externalConnection."
    )
    details: dict[str, Any] = Field(description="Validated by additiv against the tenant's contact details schema.")
    correlationId: str | None = None
    externalConnection: ExternalConnection | None = Field(
        None, description="Not part of the create request: looked up first, linked after. Needed to reconcile."
    )

    @model_validator(mode="after")
    def _a_link_needs_a_username(self) -> ContactCreate:
        if self.externalConnection is not None and self.username is None:
            raise ValueError(
                "externalConnection needs a username (e.g. the client's email): additiv can find a contact "
                "by nothing else before it is linked, and a unique username is what stops a retried create "
                "from making a second contact"
            )
        return self


class DetailsGet(_Contact):
    """Reads all details of a contact, with its pending flags (path inferred)."""


class DetailsPatch(_Contact):
    """Changes only the given details paths (path inferred). `isApprovalRequired` in the output says
    whether a change request now awaits review instead of the change being applied."""

    details: dict[str, Any] = Field(min_length=1)
    comment: str | None = None


class DetailsPut(_Contact):
    """Replaces all details (path inferred). `isApprovalRequired` in the output says whether a change
    request now awaits review; an app token is not subject to approval."""

    details: dict[str, Any]
    comment: str | None = None


class ChangeHistorySearch(_Paged, _Contact):
    """Searches a contact's applied detail changes, grouped by submission (path confirmed; the docs say
    GET with a JSON body, which ADDITIV_ROUTES can change to POST)."""

    sortBy: Literal["contactChangeSetId", "executionDate", "initiatorPersonId"] | None = None
    initiatorPersonUids: list[UUID] | None = None
    executionDateFrom: UtcDateTime | None = None
    executionDateTo: UtcDateTime | None = None
    paths: Paths | None = None

    @model_validator(mode="after")
    def _window(self) -> ChangeHistorySearch:
        _ordered(self, ("executionDateFrom", "executionDateTo"))
        return self


class ExternalConnectionsList(_Contact):
    """Lists a contact's external connections; the import service's id has system "Default" (path inferred)."""


class ExternalConnectionAdd(_Contact):
    """Links a contact to its id in another system (path inferred). The externalId must not be used by any
    other contact, in any system."""

    externalId: str = Field(min_length=1)
    system: str = Field(min_length=1)


class ExternalConnectionFind(_In):
    """Finds a contact's `id` and `uid` by its id in another system (path inferred; query parameters)."""

    system: str = Field(min_length=1)
    externalId: str = Field(min_length=1)


class UsernameGet(_Contact):
    """Reads a contact's username (path inferred)."""


class UsernamePut(_Contact):
    """Changes a contact's username (path inferred). Only where DFS is the identity provider and the
    username is not coupled with the email; fails with UsernameNotUnique if it is taken."""

    username: str = Field(min_length=1)


# --- change requests -------------------------------------------------------------------------------


class ChangeRequestSearch(_Paged):
    """Searches change requests the caller may see; latest first unless sorted (path confirmed)."""

    sortBy: (
        Literal["Id", "StatusId", "CreateDate", "InitiatorMemberId", "ContactId", "ReviewDate", "ReviewMemberId"] | None
    ) = None
    excludeHierarchy: bool | None = Field(None, description="Only contacts the caller reaches directly.")
    statusId: int | None = Field(None, ge=0, le=INT32_MAX)
    createDateFrom: UtcDateTime | None = None
    createDateTo: UtcDateTime | None = None
    initiatorMemberUids: list[UUID] | None = None
    contactIds: list[Int32Id] | None = None
    reviewDateFrom: UtcDateTime | None = None
    reviewDateTo: UtcDateTime | None = None
    reviewMemberUids: list[UUID] | None = None
    paths: Paths | None = None

    @model_validator(mode="after")
    def _windows(self) -> ChangeRequestSearch:
        _ordered(self, ("createDateFrom", "createDateTo"), ("reviewDateFrom", "reviewDateTo"))
        return self


class ChangeRequestStatuses(_In):
    """Lists the change-request statuses (ids and localised names) (path inferred)."""


class _ChangeRequest(_Contact):
    changeRequestId: Int32Id


class ChangeRequestGet(_ChangeRequest):
    """Reads one change request with its detail changes (v1.1, path confirmed)."""


class ChangeRequestReview(_ChangeRequest):
    """Approves or rejects a pending change request (path inferred). The member who initiated the change
    cannot review it."""

    isApproved: bool
    comment: str | None = None


class PendingChangeRequestCheck(_Contact):
    """Says whether the contact has a pending change request, and which (v1.1, path confirmed)."""


# --- exports and legal entities ------------------------------------------------------------------------


class ContactsExport(_In):
    """Starts a CSV export of contacts (path confirmed); fetch it with additiv.contacts.export.get."""

    query: str | None = Field(
        None,
        min_length=1,
        description="GraphQL filter, e.g. query { contacts( where: { ... } ) { items { } } }; absent: every contact.",
    )


class ContactsExportGet(_In):
    """Fetches an export's CSV (path inferred). Until it is ready the step fails as transient and is retried
    with its backoff: give this step a `retry:` long enough for your export."""

    exportJobId: UUID


class LegalEntityContact(_In):
    contactId: Int32Id
    accessPolicyKeys: list[str] = Field(min_length=1)


class LegalEntityCreate(_In):
    """Creates a legal entity (v1.1, path confirmed)."""

    contacts: list[LegalEntityContact] | None = None
    details: Any = Field(description="Validated by additiv against the tenant's legal-entity schema.")


class LegalEntityDetailsGet(_In):
    """Reads a legal entity's details and contact group (path confirmed)."""

    legalEntityId: Int32Id


class LegalEntityDetailsPut(_In):
    """Replaces a legal entity's details (path inferred; PUT or PATCH is unconfirmed, see ADDITIV_ROUTES)."""

    legalEntityId: Int32Id
    details: Any
