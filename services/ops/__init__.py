"""What operators see: Prometheus metrics, /healthz, logs, a service's life from start to stop,
progress bars.
"""
