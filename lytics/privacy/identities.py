"""Who a deletion request is about: every identity linked to the ones it names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

# identify calls carry the person's email as a trait (top level or in context).
LINKS = text(
    """
    SELECT user_id, anonymous_id,
           CASE WHEN type = 'alias' THEN payload ->> 'previousId' END AS previous_id,
           coalesce(payload -> 'traits' ->> 'email',
                    payload -> 'context' -> 'traits' ->> 'email') AS email
    FROM raw.events
    WHERE project_id = :project_id
      AND (user_id = ANY(:ids) OR anonymous_id = ANY(:ids)
           OR (type = 'alias' AND payload ->> 'previousId' = ANY(:ids)))
    """
)
# Each pass follows one more hop (an anonymous id to its user to that user's other
# devices...); a person's identities are few, so this converges in a few passes.
MAX_PASSES = 20


@dataclass(frozen=True)
class Person:
    user_ids: frozenset[str] = field(default_factory=frozenset)
    anonymous_ids: frozenset[str] = field(default_factory=frozenset)
    emails: frozenset[str] = field(default_factory=frozenset)

    @property
    def ids(self) -> list[str]:
        return sorted(self.user_ids | self.anonymous_ids)

    @property
    def visitor_ids(self) -> list[str]:
        """The marts' visitor ids for this person (`coalesce(anonymous_id, 'user:' || user_id)`)."""
        return sorted(self.anonymous_ids | {f"user:{u}" for u in self.user_ids})

    @property
    def email_variants(self) -> list[str]:
        return sorted(self.emails | {e.lower() for e in self.emails})

    def hashes(self) -> list[bytes]:
        return sorted(
            [identity_hash("user_id", u) for u in self.user_ids]
            + [identity_hash("anonymous_id", a) for a in self.anonymous_ids]
        )


def identity_hash(kind: str, value: str) -> bytes:
    return hashlib.sha256(f"{kind}:{value}".encode()).digest()


def link(conn: Connection, project_id: int, person: Person) -> Person:
    """The person with every user id, anonymous id and email the raw events link to them."""
    users, anonymous, emails = set(person.user_ids), set(person.anonymous_ids), set(person.emails)
    for _ in range(MAX_PASSES):
        before = len(users) + len(anonymous)
        rows = conn.execute(LINKS, {"project_id": project_id, "ids": sorted(users | anonymous)})
        for row in rows:
            if row.user_id:
                users.add(row.user_id)
            if row.anonymous_id:
                anonymous.add(row.anonymous_id)
            if row.previous_id:
                # alias(previousId -> userId): the previous id was an anonymous id or an
                # earlier user id; match it as either.
                users.add(row.previous_id)
                anonymous.add(row.previous_id)
            if row.email:
                emails.add(row.email)
        if len(users) + len(anonymous) == before:
            break
    return Person(frozenset(users), frozenset(anonymous), frozenset(emails))
