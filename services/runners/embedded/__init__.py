"""The embedded driver: every service in one process over one engine, for vpa replay and vpa demo.
"""
