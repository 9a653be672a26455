"""Library code for the RRPS pipeline: one concern per module."""
