"""The workflows page reports load problems as file:line:col, beside the workflows that did load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.conftest import SHIPPED_WORKFLOWS


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    directory.mkdir()
    shutil.copy(SHIPPED_WORKFLOWS / "sources.yaml", directory)
    shutil.copy(SHIPPED_WORKFLOWS / "web-enquiry.yaml", directory)
    (directory / "broken.yaml").write_text(
        "name: broken\non: {source: webform}\nsteps:\n  - id: a\n    uses: nope.op\n"
    )
    return directory


def test_load_errors_are_listed_with_file_line_and_column(console: FlaskClient) -> None:
    page = console.get("/workflows").get_data(as_text=True)
    assert "broken.yaml:5:" in page and "steps[0].uses" in page
    assert "web-enquiry" in page
