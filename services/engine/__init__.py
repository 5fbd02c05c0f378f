"""The partition engine, one algorithm for both runners: decoding at the edge, order keys, timers,
roster re-evaluation. I/O-free.
"""
