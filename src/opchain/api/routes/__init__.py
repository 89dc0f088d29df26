"""The data endpoints, one module per group of docs/api.md's table."""
