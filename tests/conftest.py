"""Shared by every test folder. Deliberately empty: unit tests need no fixtures from here, and
the Kafka broker fixtures live in ``tests/integration/conftest.py`` so unit runs never load
confluent-kafka or touch Java.
"""
