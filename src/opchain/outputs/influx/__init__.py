"""InfluxDB output: cycles encoded as line protocol (docs/influxdb.md, ``points``) and handed to a
writer that gets them to the server in the background (``writer``, ``transport``), through a disk
spool (``spool``), so the collector never waits on InfluxDB and nothing is lost while it is away.
``backfill`` loads recorded days from the files."""
