"""The database side: the host contract and its compatibility check, operator actions, roles."""
