"""The REST/WebSocket API and the built-in dashboard (SPEC §3.7)."""
