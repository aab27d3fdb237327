"""Deleting a person's data everywhere (what Segment calls delete-and-suppress).

A request (`requests`) names a person; the erasure (`erasure`) links every identity
they used (`identities`), suppresses them, removes their rows from raw and from the
narrowed events table; the pipeline then rebuilds the mart days and re-exports the
partitions those rows were in. docs/privacy.md has the whole flow.
"""
