"""The Kafka runner: the faust driver of the partition engine and what it needs of the broker."""
