"""Emulated BLE health devices, one module per device kind, for tests and demos."""
