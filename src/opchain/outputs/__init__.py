"""Where a session's cycles go: every output, named in one list (docs/influxdb.md, DEVELOPERS.md)."""
