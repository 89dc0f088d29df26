"""The scale-out bus on Redis Streams: collectors publish cycles, workers record them, API
instances serve them (docs/scale-out.md).

- ``collect`` (:mod:`.collector`): the broker and the cycle loop only. Each cycle is split by
  index and published to that index's stream (keys: :class:`opchain.redisconn.Keys`) through a
  :class:`.publish.Publisher`, which spools to local disk while Redis is away and publishes in
  order when it is back.
- ``worker`` (:mod:`.worker`): owns partitions (an index each) through leases with fencing
  tokens (:mod:`.lease`), reads their streams in one consumer group, merges and hands each cycle
  to the same outputs as ``opchain run``; takes over a dead worker's partitions and their
  pending entries (``XAUTOCLAIM``). An entry is acknowledged once the files holding it are
  flushed, so one a worker died holding is delivered again; the outputs skip a cycle they hold.
- ``serve --bus`` (:mod:`.live`): the live messages the workers keep in Redis and publish on a
  channel, pushed to every WebSocket client of every instance.

A stream entry is one of three kinds (field ``kind``), its ID made from the time it is about,
so that publishing one twice (a collector restarted, two collectors of one index) is refused by
Redis itself as not newer than the stream's last entry:

- ``start`` ``{ms}-0``, ``ms`` the moment the session was planned: ``day`` (ISO date),
  ``planned`` (ISO datetime, IST), ``dump`` (zlib of the day's instruments file, as written);
- ``cycle`` ``{ms}-1``, ``ms`` the cycle's scheduled time: ``snap`` (:mod:`.codec`), ``loop``
  (JSON: the collector's part of :class:`opchain.merge.cycle.LoopStats`);
- ``end`` ``{ms}-0``, ``ms`` the session's close: ``day``; the session was recorded to its end.
"""
