"""The messaging layer: the Kafka cluster, its topics, and the event contract every layer shares."""
