"""Console fixtures: a logged-in test client."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.conftest import ADMIN_TOKEN


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_in(client: FlaskClient, token: str = ADMIN_TOKEN, next_path: str = "/runs") -> object:
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"token": token, "next": next_path, "csrf_token": csrf_of(page)})


@pytest.fixture
def console(client: FlaskClient) -> FlaskClient:
    response = log_in(client)
    assert response.status_code == 302
    return client
