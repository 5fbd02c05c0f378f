"""The drivers of the partition engine: embedded (one process, no broker) and kafka (a consumer
group). They do not know each other.
"""
