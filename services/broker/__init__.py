"""The Kafka adapter: the one module that talks to aiokafka (client), topic names and their set-up,
partition assignment.
"""
