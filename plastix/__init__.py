"""plastix: deep RL research on JAX."""

__version__ = "0.1.0"
