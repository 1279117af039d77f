"""The uses this product refuses, each with the rule that forbids it, in one sentence.

The configuration schema has no field for any of them, so they cannot be switched on. A
configuration that asks for one anyway (``mode: face_recognition``, ``alerts: ...``,
``record: true``) is refused with the reason here, before validation, rather than dismissed as a
mere unknown key: the operator and the DPO must see *why* it does not exist.

Matching is on words: a key (or a string value under a key such as ``mode`` or ``features``) is
split on ``_``, ``-``, ``.`` and spaces, and refused when its words contain one of a feature's
word sequences. ``face_recognition``, ``faceRecognition`` and ``face-recognition`` all match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_ABNORMAL = (
    "Automated detection of 'abnormal' situations is not allowed without a specific law "
    "(CNIL position on augmented cameras, July 2022; its 2023-2024 controls found such uses "
    "unlawful); this device only produces statistics."
)
_DECREE = (
    "This is one of the eight events of décret 2023-828, an experiment reserved by law "
    "(loi 2023-380) to specific authorities and events, ended on 31 March 2025; it never "
    "covered a counting box. " + _ABNORMAL
)


@dataclass(frozen=True)
class Forbidden:
    feature: str
    phrases: str  # comma-separated; each phrase is a sequence of words, e.g. "wrong way"
    reason: str

    @property
    def sequences(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(p.split()) for p in self.phrases.split(","))


FORBIDDEN: tuple[Forbidden, ...] = (
    Forbidden(
        "face detection or recognition",
        "face, faces, facial",
        "Face recognition in public space is excluded: real-time remote biometric identification "
        "is prohibited (EU AI Act art. 5(1)(h)) and biometric data are special-category data "
        "(GDPR art. 9).",
    ),
    Forbidden(
        "biometric identification",
        "biometric, biometrics, identification, identify, gait",
        "Biometric identification of people in public space is prohibited (EU AI Act art. 5; "
        "GDPR art. 9); this device counts, it never identifies.",
    ),
    Forbidden(
        "re-identification or appearance embeddings",
        "reid, re id, reidentification, re identification, embedding, embeddings, appearance, "
        "person search, track export",
        "Re-identification follows one person across cameras or over time, so the output is no "
        "longer anonymous statistics (CNIL, July 2022; GDPR art. 5(1)(c) data minimisation).",
    ),
    Forbidden(
        "attribute inference (age, gender, emotion, ...)",
        "age estimation, age detection, age inference, age group, age recognition, gender, "
        "emotion, emotions, ethnicity, attribute, attributes, mask detection, clothing",
        "Inferring personal attributes is biometric categorisation or emotion recognition "
        "(EU AI Act art. 5(1)(f)-(g)), or special-category processing (GDPR art. 9).",
    ),
    Forbidden(
        "licence-plate reading",
        "plate, plates, lpr, anpr, alpr, lapi, registration number",
        "Searching number plates belongs to judicial requisitions carried out by authorised "
        "forces, never to a counting box (CNIL, controls of 2023-2024).",
    ),
    Forbidden(
        "crowd, density or gathering alerts",
        "crowd, density, gathering, gatherings, attroupement",
        _ABNORMAL,
    ),
    Forbidden(
        "stationary-vehicle, parking or wrong-way alerts",
        "parking, stationary, wrong way, stopped vehicle",
        _ABNORMAL,
    ),
    Forbidden("loitering or dwell time", "loitering, dwell, long stay, stay duration", _ABNORMAL),
    Forbidden("abandoned objects", "abandoned, luggage, left object", _ABNORMAL),
    Forbidden(
        "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)",
        "weapon, weapons, fall detection, fallen, person down, intrusion, forbidden zone, "
        "sensitive zone, fire, smoke, crowd movement",
        _DECREE,
    ),
    Forbidden(
        "alerts or abnormal-event detection",
        "alert, alerts, alarm, alarms, abnormal, anomaly, anomalies, incident, incidents, "
        "event detection",
        _ABNORMAL,
    ),
    Forbidden(
        "per-object speed output",
        "speed, velocity, speeding",
        "A per-object speed is a measurement of one person's or vehicle's behaviour, not an "
        "aggregate statistic, and opens enforcement uses this device is not declared for "
        "(GDPR art. 5(1)(b)-(c) purpose limitation and minimisation).",
    ),
    Forbidden(
        "frame or snapshot recording or streaming",
        "record, recording, snapshot, snapshots, save frames, video out, stream out, restream, "
        "clip export",
        "No pixel leaves the detector: recording or relaying images would make this a "
        "video-protection system with its own legal regime, which a counting device is not "
        "(GDPR art. 25 data protection by design).",
    ),
)

# Keys whose string values name a mode or feature, e.g. ``mode: face_recognition``.
VALUE_KEYS = frozenset(
    {"mode", "modes", "feature", "features", "task", "tasks", "analytics", "outputs", "output",
     "use", "uses", "enable", "enabled_features", "purpose"}
)  # fmt: skip


def words(text: str) -> tuple[str, ...]:
    """'faceRecognition' / 'face-recognition' / 'face_recognition' -> ('face', 'recognition')."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return tuple(w for w in re.split(r"[\s_.\-/:]+", spaced.lower()) if w)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def match(text: str) -> Forbidden | None:
    said = words(text)
    return next((f for f in FORBIDDEN if any(_contains(said, w) for w in f.sequences)), None)


@dataclass(frozen=True)
class Refusal:
    where: str  # YAML path, e.g. "detector.face_recognition" or "cameras[0].mode"
    feature: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.feature} is refused. {self.reason}"


def find_forbidden(data: Any, where: str = "") -> Iterator[Refusal]:
    """Every forbidden feature a raw configuration tree asks for, with its YAML path."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            hit = match(str(key))
            if hit is not None:
                yield Refusal(path, hit.feature, hit.reason)
                continue
            if str(key).lower() in VALUE_KEYS:
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str):
                        found = match(text)
                        if found is not None:
                            yield Refusal(f"{path}: {text}", found.feature, found.reason)
            yield from find_forbidden(value, path)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from find_forbidden(item, f"{where}[{i}]")


# Model classes that betray a forbidden use, matched on the whole class name: COCO's "fire
# hydrant" or "parking meter" are street furniture, a class named "fire" or "face" is not.
_CLASS_FEATURES: dict[str, tuple[str, ...]] = {
    "face detection or recognition": ("face", "faces", "human face", "head", "heads"),
    "licence-plate reading": (
        "plate", "license plate", "licence plate", "number plate", "car plate", "lp",
    ),
    "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)": (
        "weapon", "gun", "handgun", "pistol", "rifle", "firearm", "fire", "smoke", "flame",
        "fall", "fallen person", "person down", "lying person",
    ),
    "crowd, density or gathering alerts": ("crowd", "gathering"),
    "abandoned objects": ("abandoned object", "abandoned luggage", "unattended bag"),
}  # fmt: skip


def forbidden_class(name: str) -> Forbidden | None:
    """The forbidden use a model class name reveals, if any (whole-name match)."""
    said = " ".join(words(name))
    feature = next((f for f, names in _CLASS_FEATURES.items() if said in names), None)
    return next((f for f in FORBIDDEN if f.feature == feature), None)
