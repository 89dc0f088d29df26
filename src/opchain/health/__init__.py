"""Health and operations (SPEC §3.8): checks (``checks``, one verdict each, ``summary`` over
them and the components' ``state`` files), Prometheus ``metrics``, ``alerts`` by e-mail and
webhook, the ``monitor`` that runs them periodically, the ``supervisor`` that restarts failed
components, and the ``broker`` transport that counts Kite's answers."""
