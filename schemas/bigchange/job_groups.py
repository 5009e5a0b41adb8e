"""Input models for job groups (multi-job programmes) and job types (bigchange-vh3-jobs.txt).

Note the docs make the single-record reads here POSTs (/job_groups/job_group,
/job_types/job_types), unlike GET /jobs/job and GET /contacts/contact.
"""

from __future__ import annotations

from pydantic import Field

from schemas.bigchange.common import Id, In, Paged, option


class JobGroupCreate(In):
    """With `upsert: true` a group with the same name (ignoring case and surrounding spaces) is
    returned (`created: false`) instead of adding another; otherwise the output has `created: true`."""

    name: str = Field(min_length=1, max_length=100)
    upsert: bool = option(False, "find the group by name first; create it only when there is none")


class JobGroupEdit(In):
    jobGroupId: Id
    name: str = Field(min_length=1, max_length=100)


class JobGroupRef(In):
    jobGroupId: Id


class JobGroupList(Paged):
    pass


class JobGroupStatusHistory(Paged):
    jobGroupId: Id


class JobTypeGet(In):
    jobTypeId: Id


class JobTypeList(Paged):
    pass
