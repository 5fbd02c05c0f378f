"""Settings, from the environment through one loader: the business-rule thresholds, the Kafka
clients, the process (store, notifier, dashlet, logs).
"""
