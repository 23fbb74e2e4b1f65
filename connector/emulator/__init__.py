"""The Google Calendar API v3 emulator (``gcal-kafka emulator``).

Layout: ``server`` (HTTP + CLI), ``app`` (one object wiring everything), ``api`` (routing),
``store`` (data and change counters), ``events`` (writes), ``listing`` (events.list/instances),
``calendars`` (calendarList, calendars, datasets), ``tokens``, ``auth``, ``push``, ``faults``,
``control`` (the /emulator/ API), ``errors`` (Google's error bodies). ``recurrence`` and
``sample`` expand series and build datasets.
"""
