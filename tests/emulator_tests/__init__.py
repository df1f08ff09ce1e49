"""Tests of the local exchange emulator, driven by the real ccxt client."""
