"""Window-free view logic: one Kivy `EventDispatcher` per screen, tested without a window.

Nothing here imports `kivy.uix` or `kivy.core.window`; screens (KV files) bind to these
properties and call these methods, and that is all they do.
"""
