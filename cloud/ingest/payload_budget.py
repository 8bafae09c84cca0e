"""A cap on the payload bytes an ingest worker holds between the broker and the database.

Receive Maximum bounds how many messages the broker has in flight to a worker, not how
big they are: a thousand messages of a few megabytes each would be gigabytes. The network
thread takes a message's size from the budget before queueing it and waits while the
budget is spent; the writer gives it back once the message is flushed (stored and
acknowledged, or dead-lettered). Waiting there stops paho reading the socket, so TCP
holds the rest at the broker, which keeps it for the persistent session.
"""

from __future__ import annotations

import threading


class PayloadBudget:
    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 1:
            raise ValueError(f"a payload budget needs at least one byte, not {limit_bytes}")
        self.limit_bytes = limit_bytes
        self._held = 0
        self._peak = 0
        self._closed = False
        self._changed = threading.Condition()

    def take(self, size: int) -> None:
        """Wait until `size` more bytes fit, then hold them. With nothing held any one
        message fits, however big, so a message larger than the budget cannot wedge it."""
        with self._changed:
            while self._held and self._held + size > self.limit_bytes and not self._closed:
                self._changed.wait()
            self._held += size
            self._peak = max(self._peak, self._held)

    def give_back(self, size: int) -> None:
        with self._changed:
            if size > self._held:
                raise ValueError(f"giving back {size} bytes, but only {self._held} are held")
            self._held -= size
            self._changed.notify_all()

    def close(self) -> None:
        """Stop making anyone wait: the writer that would give bytes back is stopping, and
        paho's thread must not hang in `take` while the client shuts down."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def held_bytes(self) -> int:
        return self._held

    @property
    def peak_bytes(self) -> int:
        """The most ever held at once: at most the limit, or one message if that is larger."""
        return self._peak
