"""The phone's profile: whom it is bound to, family members, reminders, settings.

One JSON file in the app's data folder, written atomically with mode 0600 (it names the
patient). The broker account is not here but in the edge agent's credentials file.
No profile file means the first-run screens are shown.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mobile_app.reminders import MedicationReminder

PROFILE_FILE = "profile.json"


@dataclass
class Member:
    patient_id: str
    name: str
    """What the family calls them on this phone (本人, 老伴); never the real full name."""


@dataclass
class PairedDevice:
    address: str
    kind: str
    title: str


@dataclass
class Profile:
    cloud_url: str
    edge_id: str
    members: list[Member]
    current_patient_id: str
    language: str = "zh_CN"
    font_scale: float = 1.25
    """Larger than 1 by default: most users are older."""
    reminders: list[MedicationReminder] = field(default_factory=list)
    devices: list[PairedDevice] = field(default_factory=list)

    @property
    def owner(self) -> Member:
        return self.members[0]

    @property
    def current_member(self) -> Member:
        for member in self.members:
            if member.patient_id == self.current_patient_id:
                return member
        return self.owner

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reminders"] = [r.to_json() for r in self.reminders]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        return cls(
            cloud_url=data["cloud_url"],
            edge_id=data["edge_id"],
            members=[Member(**m) for m in data["members"]],
            current_patient_id=data["current_patient_id"],
            language=data.get("language", "zh_CN"),
            font_scale=float(data.get("font_scale", 1.25)),
            reminders=[MedicationReminder.from_json(r) for r in data.get("reminders", [])],
            devices=[PairedDevice(**d) for d in data.get("devices", [])],
        )


def load_profile(data_dir: Path) -> Profile | None:
    path = data_dir / PROFILE_FILE
    if not path.exists():
        return None
    return Profile.from_json(json.loads(path.read_text("utf-8")))


def save_profile(data_dir: Path, profile: Profile) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / PROFILE_FILE
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(profile.to_json(), out, ensure_ascii=False, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)


def delete_profile(data_dir: Path) -> None:
    (data_dir / PROFILE_FILE).unlink(missing_ok=True)
