"""The InfluxDB output: cycles as line protocol (docs/influxdb.md), written in the background."""
