"""Where a session's cycles go: every output, named in one list (DEVELOPERS.md)."""
