"""What an operator is told of the database a command could not use: never its password."""

from __future__ import annotations

import pytest

from cloud.settings import CloudSettings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://carer:s3cret@db.ward:6543/carebridge",
            "host=db.ward port=6543 dbname=carebridge user=carer",
        ),
        ("host=/run/postgresql dbname=cb password=s3cret", "host=/run/postgresql dbname=cb"),
        ("postgresql://", "(libpq's defaults)"),
        ("postgresql://%zz", "(an unreadable CAREBRIDGE_DATABASE_URL)"),
    ],
)
def test_the_location_names_host_port_database_and_user_only(url: str, shown: str) -> None:
    location = CloudSettings(database_url=url).database_location

    assert location == shown
    assert "s3cret" not in location
