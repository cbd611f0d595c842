"""Kafka consumer runner, dispatch, dead-letter handling and the embedded feed."""
