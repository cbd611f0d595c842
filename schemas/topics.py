"""The Kafka topics the events travel on: the relay writes them, the consumers read them."""

EVENTS_TOPIC = "consent.events.v1"
DEAD_LETTER_TOPIC = "consent.events.dlq.v1"


def dead_letter_topic_for(topic: str) -> str:
    """Where a consumer of ``topic`` sends the records it cannot apply."""
    return f"{topic.removesuffix('.v1')}.dlq.v1"
