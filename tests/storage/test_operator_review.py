"""A row inserted for a parent that a concurrent request has just deleted: the store says the
parent is gone (NotFound), never Conflict ("already exists"), which the HTTP layer answers 409.

Found on `scripts/replicas` (PostgreSQL, nginx, two replicas): a robot created while its
project was being deleted was answered 409 "robot 'r0' already exists in this project", and a
`docker login` (GET `offline_token=true`) racing the robot's deletion 409 "refresh token
already stored" (62 of 135 requests in 15 races), where a client expects 401. Members and
webhook policies already raise NotFound in that case (`_insert(..., missing=...)`)."""

from __future__ import annotations

import pytest

from tests.storage.test_store_contract import new_robot, store
from tokenserver.errors import ProjectNotFound
from tokenserver.services.ports import Store

__all__ = ["store"]  # the fixture: SQLite, PostgreSQL, PostgreSQL with its read cache


async def test_a_robot_for_a_project_deleted_meanwhile_is_project_not_found(
    store: Store,
) -> None:
    project = await store.create_project("p", False, None, 1)
    assert await store.delete_project(project.id)
    with pytest.raises(ProjectNotFound):
        await store.create_robot(new_robot("ci", project.id))
