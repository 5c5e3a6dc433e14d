"""The inbound half: Meta's webhooks received, authenticated, and stored once each.

- :mod:`.events`: the events (:class:`~.events.StatusEvent`, :class:`~.events.InboundMessage`) and the
  parser of one delivery;
- :mod:`.store`: :class:`~.store.EventStore`, durable at a path or an ``ObjectStoragePath``;
- :mod:`.settings`: the receiver's settings, from the Maton connection's extras;
- :mod:`.app`: the FastAPI receiver; :mod:`.plugin`: its Airflow 3 API-server plugin; :mod:`.cli`: the
  ``whatsapp-webhooks`` console script.
"""
