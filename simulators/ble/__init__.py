"""Bluetooth LE without hardware: emulated peripherals, a simulated radio, a bleak backend.

Driver code talks to the public bleak API only. In tests the bleak backend in
`simulators.ble.bleak_bumble` carries those calls, as real ATT/GATT PDUs, through a bumble
host and virtual controllers (`simulators.ble.radio`) to bumble GATT servers built on
`simulators.ble.peripheral.EmulatedPeripheral`. See docs/ble.md.
"""
