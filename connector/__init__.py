"""gcal-kafka-connector: Google Calendar as a stream of change events on Apache Kafka."""

__version__ = "0.1.0"
