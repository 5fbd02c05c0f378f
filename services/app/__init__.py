"""The composition roots: the vpa command line, each service's start, the demo, replay, verify and
erase; bootstrap wires the processors.
"""
