"""The database side: the host contract and its compatibility check (more to move here as issues touch it)."""
