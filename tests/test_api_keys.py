"""Keys are shown once, stored as hashes, and stop working when revoked or rotated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from lytics import api_keys
from lytics.projects import ProjectExistsError, create_project, get_project, list_projects
from lytics.warehouse.tables import api_keys as api_keys_table


@pytest.fixture
def project_id(engine: Engine) -> int:
    with engine.begin() as conn:
        return create_project(conn, "site", "Site").id


def test_key_is_stored_as_hash_with_visible_prefix_only(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        issued = api_keys.create_key(conn, project_id, "write", "sdk")
        stored = conn.execute(select(api_keys_table)).one()._mapping
    assert issued.plaintext.startswith("lyw_")
    assert stored["prefix"] == issued.plaintext[: api_keys.VISIBLE_CHARS]
    assert stored["key_hash"] == api_keys.hash_key(issued.plaintext)
    assert issued.plaintext.encode() not in b"".join(
        v if isinstance(v, bytes) else str(v).encode() for v in stored.values()
    )


def test_authenticate_matches_kind_and_plaintext(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        write = api_keys.create_key(conn, project_id, "write")
        secret = api_keys.create_key(conn, project_id, "secret")
        found = api_keys.authenticate(conn, write.plaintext, "write")
        assert found is not None
        assert (found.id, found.project_slug) == (write.id, "site")
        # A write key never opens the read API, and vice versa.
        assert api_keys.authenticate(conn, write.plaintext, "secret") is None
        assert api_keys.authenticate(conn, secret.plaintext, "write") is None
        assert api_keys.authenticate(conn, write.plaintext + "x", "write") is None


def test_revoked_key_stops_working(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        issued = api_keys.create_key(conn, project_id, "secret")
        info = api_keys.revoke_key(conn, issued.id)
        assert not info.active()
        assert api_keys.authenticate(conn, issued.plaintext, "secret") is None


def test_rotation_without_grace_replaces_key_at_once(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        old = api_keys.create_key(conn, project_id, "write", "web")
        new = api_keys.rotate_key(conn, old.id)
        assert new.kind == "write"
        assert api_keys.authenticate(conn, new.plaintext, "write") is not None
        assert api_keys.authenticate(conn, old.plaintext, "write") is None
        assert api_keys.get_key(conn, new.id).name == "web"


def test_rotation_with_grace_keeps_old_key_until_it_expires(
    engine: Engine, project_id: int
) -> None:
    with engine.begin() as conn:
        old = api_keys.create_key(conn, project_id, "write")
        api_keys.rotate_key(conn, old.id, timedelta(hours=1))
        assert api_keys.authenticate(conn, old.plaintext, "write") is not None
        # Simulate the end of the grace period.
        conn.execute(
            update(api_keys_table)
            .where(api_keys_table.c.id == old.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert api_keys.authenticate(conn, old.plaintext, "write") is None


def test_rotating_or_revoking_unknown_key_is_a_clear_error(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        with pytest.raises(api_keys.KeyNotFoundError, match="no key with id 999"):
            api_keys.revoke_key(conn, 999)
        revoked = api_keys.create_key(conn, project_id, "write")
        api_keys.revoke_key(conn, revoked.id)
        with pytest.raises(api_keys.KeyNotFoundError, match="already revoked"):
            api_keys.rotate_key(conn, revoked.id)


def test_projects_have_unique_valid_slugs(engine: Engine) -> None:
    with engine.begin() as conn:
        create_project(conn, "one")
        with pytest.raises(ProjectExistsError):
            create_project(conn, "one")
        with pytest.raises(ValueError, match="invalid project slug"):
            create_project(conn, "Not A Slug")
        assert [p.slug for p in list_projects(conn)] == ["one"]
        assert get_project(conn, "one").name == "one"
