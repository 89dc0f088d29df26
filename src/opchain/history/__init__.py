"""The archive as a product (issue 17): what was recorded, checked (``verify``), queried and
exported (``query``), and, later, replayed through the live pipeline. Reads the data directory
through :mod:`opchain.store` only; writes nothing into it except where a module says so."""
