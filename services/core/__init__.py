"""The shared domain every rule package uses: tasks and their versions, the roster, handover,
evidence, ids, time, the clock and the processor port the rules implement. Pure: no I/O, no
adapter library.
"""
