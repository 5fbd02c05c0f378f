"""Code shared by every service: settings, clock, decoding, the processor definition and its runners."""
