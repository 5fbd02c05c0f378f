"""The Kafka runner: the Kafka driver of the partition engine and what it needs of the broker."""
