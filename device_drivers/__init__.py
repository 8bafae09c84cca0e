"""BLE device drivers: pure GATT codecs and drivers over bleak's public API."""
