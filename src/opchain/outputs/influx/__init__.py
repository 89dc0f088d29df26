"""InfluxDB output: cycles encoded as line protocol (docs/influxdb.md) and handed to a writer
that gets them to the server in the background, spooling to disk whatever the server does not
take yet, so the collector never waits on InfluxDB and nothing is lost while it is away."""
