"""The Kafka driver: a consumer group of partition workers in front of one engine per partition,
state in a changelog.
"""
