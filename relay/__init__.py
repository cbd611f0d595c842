"""The relay: the event store's notification log published to Kafka, with its tracked position."""
