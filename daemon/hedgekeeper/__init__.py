"""hedgekeeper: keeps a crypto spot portfolio hedged with short futures."""

__version__ = "0.1.0"
