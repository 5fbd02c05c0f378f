"""vpa whatif: a history replayed with changed business-rule settings, compared, and drawn as a
report.
"""
