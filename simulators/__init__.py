"""Device simulators: reading-level fleets (`simulators.readings`) and BLE emulators
(`simulators.ble`)."""
