"""Pure codecs for Bluetooth SIG health profiles: bytes in, typed values out, and back.

Nothing here does I/O. Every decoder raises `device_drivers.errors.PayloadError` and nothing
else for bad input; every encoder is the exact inverse, for the simulators.
"""
