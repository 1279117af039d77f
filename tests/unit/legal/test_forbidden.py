"""Forbidden uses asked for in other languages, with look-alike letters or invisible characters,
or through the environment: refused with the legal reason (exit 3, audited), never dismissed as
an unknown key or silently ignored; and what must still pass."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import NON_SETTING_ENV, load_settings
from edge.errors import ConfigError, PolicyViolation
from edge.legal.forbidden import FORBIDDEN, find_forbidden, forbidden_class, match
from tests.conftest import EXAMPLE, REPO, edge_argv

FACE, PLATE = "face detection or recognition", "licence-plate reading"
PARKING = "stationary-vehicle, parking or wrong-way alerts"
LOITERING, CROWD = "loitering or dwell time", "crowd, density or gathering alerts"
ALERTS, SPEED = "alerts or abnormal-event detection", "per-object speed output"
RECORDING = "frame or snapshot recording or streaming"
REID = "re-identification or appearance embeddings"
DECREE = next(f.feature for f in FORBIDDEN if f.feature.startswith("events of"))

# Per feature, the words of French, German, Spanish and Italian (and a German compound).
TRANSLATIONS = [
    (FACE, "reconnaissance_faciale"), (FACE, "visage"), (FACE, "Gesichtserkennung"),
    (FACE, "gesicht"), (FACE, "reconocimiento facial"), (FACE, "cara"),
    (FACE, "riconoscimento-facciale"), (FACE, "volto"),
    ("biometric identification", "identificación biométrica"),
    ("biometric identification", "Biometrie"),
    ("re-identification or appearance embeddings", "Wiedererkennung"),
    ("re-identification or appearance embeddings", "réidentification"),
    ("attribute inference (age, gender, emotion, ...)", "Geschlechtserkennung"),
    ("attribute inference (age, gender, emotion, ...)", "estimation de l'âge"),
    ("attribute inference (age, gender, emotion, ...)", "emozioni"),
    (PLATE, "plaque d'immatriculation"), (PLATE, "Kennzeichen"),
    (PLATE, "KFZ-Kennzeichenerkennung"), (PLATE, "Nummernschild"), (PLATE, "matrícula"),
    (PLATE, "targa"), (PLATE, "lecture_plaques"),
    (CROWD, "foule"), (CROWD, "Menschenmenge"), (CROWD, "multitud"), (CROWD, "folla"),
    (CROWD, "attroupement"),
    (PARKING, "stationnement"), (PARKING, "Parken"), (PARKING, "Falschparker"),
    (PARKING, "aparcamiento"), (PARKING, "parcheggio"), (PARKING, "contresens"),
    (LOITERING, "flânerie"), (LOITERING, "maraudage"), (LOITERING, "herumlungern"),
    (LOITERING, "merodeo"), (LOITERING, "bighellonaggio"), (LOITERING, "Verweildauer"),
    ("abandoned objects", "bagage abandonné"), ("abandoned objects", "herrenloses Gepäck"),
    ("abandoned objects", "equipaje"), ("abandoned objects", "bagaglio"),
    (DECREE, "Waffenerkennung"), (DECREE, "incendie"), (DECREE, "armas de fuego"),
    (DECREE, "fumo"),
    (ALERTS, "alerte"), (ALERTS, "Alarm"), (ALERTS, "Alarmierung"), (ALERTS, "alerta"),
    (ALERTS, "allarme"), (ALERTS, "anomalie"),
    (SPEED, "vitesse"), (SPEED, "Geschwindigkeit"), (SPEED, "Geschwindigkeitsmessung"),
    (SPEED, "velocidad"), (SPEED, "velocità"),
    (RECORDING, "enregistrement"), (RECORDING, "Aufzeichnung"), (RECORDING, "Videoaufzeichnung"),
    (RECORDING, "grabación"), (RECORDING, "registrazione"),
]  # fmt: skip

ZWSP, SOFT_HYPHEN, ZWJ, WORD_JOINER = "\u200b", "\u00ad", "\u200d", "\u2060"
CYRILLIC_A, CYRILLIC_E, CYRILLIC_O, CYRILLIC_P = "\u0430", "\u0435", "\u043e", "\u0440"
CYRILLIC_C, CYRILLIC_X, CYRILLIC_I = "\u0441", "\u0445", "\u0456"
GREEK_O, GREEK_RHO, GREEK_NU = "\u03bf", "\u03c1", "\u03bd"
# The tricks a copy-paste or a keyboard allows, each hiding a word the plain matcher knew.
LOOK_ALIKES = [
    (FACE, f"f{CYRILLIC_A}ce_recognition"),
    (FACE, f"fa{ZWSP}ce_recognition"),
    (FACE, f"f{SOFT_HYPHEN}ace{ZWJ}_detection"),
    (FACE, "\uff46\uff41\uff43\uff45"),  # fullwidth "face"
    (FACE, "\U0001d41f\U0001d41a\U0001d41c\U0001d41e"),  # mathematical bold "face"
    (FACE, f"G{CYRILLIC_E}sichtserkennung"),
    (FACE, f"vis{CYRILLIC_A}ge"),
    (FACE, "facerecognition"),
    (PLATE, f"{GREEK_RHO}late_reader"),
    (PLATE, f"{CYRILLIC_P}l{CYRILLIC_A}te"),
    (PLATE, f"licence{WORD_JOINER}plate"),
    (PLATE, f"Kennz{CYRILLIC_E}ichen"),
    (PARKING, f"p{CYRILLIC_A}rking"),
    (PARKING, f"st{CYRILLIC_A}ti{GREEK_O}nnement"),
    (LOITERING, f"l{CYRILLIC_O}itering"),
    (CROWD, f"{CYRILLIC_C}rowd"),
    (ALERTS, f"al{CYRILLIC_E}rt"),
    (ALERTS, f"a{ZWSP}l{ZWSP}e{ZWSP}r{ZWSP}t"),
    (SPEED, f"v{CYRILLIC_E}locity"),
    (SPEED, f"{GREEK_NU}itesse"),
    (RECORDING, f"r{CYRILLIC_E}{CYRILLIC_C}ord"),
    ("biometric identification", f"b{CYRILLIC_I}ometric"),
    ("re-identification or appearance embeddings", f"{CYRILLIC_E}mbedding{CYRILLIC_X}"),
]


def example(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data.update(changes)
    return data


def refused_feature(tmp_path: Path, data: dict[str, Any]) -> str:
    """The one legal refusal ``load_settings`` gives for ``data`` written as a file."""
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(PolicyViolation) as caught:
        load_settings(path)
    (line,) = caught.value.lines
    return line


@pytest.mark.parametrize(("feature", "text"), TRANSLATIONS + LOOK_ALIKES)
def test_a_forbidden_word_is_found_in_any_language_and_spelling(feature: str, text: str) -> None:
    found = match(text)
    assert found is not None and found.feature == feature


@pytest.mark.parametrize(("feature", "text"), TRANSLATIONS[::3] + LOOK_ALIKES[::2])
def test_as_a_key_it_is_refused_with_the_legal_reason(
    tmp_path: Path, feature: str, text: str
) -> None:
    line = refused_feature(tmp_path, example(**{text: True}))
    reason = next(f.reason for f in FORBIDDEN if f.feature == feature)
    assert f"{feature} is refused. {reason}" in line


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("mode", f"reconn{CYRILLIC_A}issance faciale"),
        ("features", ["count", "Gesichtserkennung"]),
        ("detector", {"task": "lectura de matrículas"}),
        ("tracker", {"export": f"flâ{ZWSP}nerie"}),
        ("window", {"seconds": 60, "then": "allarme"}),
    ],
)
def test_as_a_value_anywhere_it_is_refused_and_the_trick_is_shown(
    tmp_path: Path, where: str, text: Any
) -> None:
    line = refused_feature(tmp_path, example(**{where: text}))
    assert line.startswith(where) and " is refused. " in line
    assert ("\\u0430" in line) if CYRILLIC_A in str(text) else True
    assert ("\\u200b" in line) if ZWSP in str(text) else True


@pytest.mark.parametrize(
    ("field", "name"),
    [("id", "parking-nord"), ("id", f"c{CYRILLIC_A}m-gesicht"), ("lines", "alarme-1"),
     ("zones", "zona-sosta"), ("lines", "kennzeichen")],
)  # fmt: skip
def test_a_name_with_a_forbidden_word_is_refused(tmp_path: Path, field: str, name: str) -> None:
    data = example()
    camera = data["cameras"][0]
    if field == "id":
        camera["id"] = name
    elif field == "lines":
        camera["lines"][0]["name"] = name
    else:
        camera["zones"] = [{"name": name, "points": [[0, 0], [100, 0], [100, 100]]}]
    assert f"cameras[0].{field}" in refused_feature(tmp_path, data)


@pytest.mark.parametrize(
    "text",
    [
        {"cameras": [{"location": "Parking Saint-Jean, entrée nord (surveillance: alarme)"}]},
        {"deployment": {"controller": "Régie du stationnement", "legal_basis": "vitesse"}},
        {"deployment": {"recipients": {"others": ["Parkhaus GmbH"]}}},
        {"dashboard": {"title": "Fréquentation du parking", "attribution": "Ville, alertes"}},
        {"mqtt": {"password": "face-alarm-2024", "host": "parking.example.org"}},
        {"cameras": [{"source": "/data/clips/parking_lot.mp4"}]},
    ],
)
def test_free_text_paths_and_secrets_are_not_read_for_forbidden_words(text: Any) -> None:
    assert not list(find_forbidden(text))


def test_a_declared_purpose_is_read() -> None:
    (refusal,) = find_forbidden({"deployment": {"purpose": "Reconocimiento facial"}})
    assert refusal.feature == FACE


@pytest.mark.parametrize(
    "word",
    ["north-gate", "rue-de-la-paix", "cam1", "place-d-armes", "plaza-de-armas", "porte-de-clichy",
     "surface", "interface", "envisage", "fallback", "max_age_seconds", "licence", "stream",
     "bottom_center", "Europe/Paris", "homeassistant", "passage", "carrefour", "feu-rouge"],
)  # fmt: skip
def test_ordinary_words_and_place_names_are_not_refused(word: str) -> None:
    assert match(word) is None


# -- the environment --------------------------------------------------------------------------


def with_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("name", "value", "feature"),
    [
        ("EDGE_MODE", "face_recognition", FACE),
        ("EDGE_FACE_RECOGNITION", "true", FACE),
        ("EDGE_GESICHTSERKENNUNG", "1", FACE),
        ("EDGE_DETECTOR__PLATE_READER", "on", PLATE),
        ("edge_alertes", "1", ALERTS),
        ("EDGE_FEATURES", '["count", "vitesse"]', SPEED),
        ("EDGE_TRACKER", '{"export": "tr\u0430ck export"}', REID),
        (f"EDGE_P{CYRILLIC_A}RKING", "1", PARKING),
    ],
)  # fmt: skip
def test_a_variable_asking_for_a_forbidden_use_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, feature: str
) -> None:
    with_env(monkeypatch, **{name: value})
    with pytest.raises(PolicyViolation) as caught:
        load_settings(EXAMPLE)
    (line,) = caught.value.lines
    assert line.startswith(name.replace(CYRILLIC_A, "\\u0430")) and f"{feature} is refused." in line


@pytest.mark.parametrize(
    "name",
    ["EDGE_FOO", "EDGE_DETECTOR_CONFIDENCE", "EDGE_DETECTOR__NOPE", "EDGE_MQTT__TLS__CA",
     "edge_window__minutes", "EDGE_", "EDGE_CAMERAS__0__ID", "EDGE_WINDOW__SECONDS__X"],
)  # fmt: skip
def test_a_variable_that_sets_nothing_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    with_env(monkeypatch, **{name: "1"})
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE)
    (line,) = caught.value.lines
    assert line.startswith(f"{name}: no such setting")


def test_a_near_miss_is_told_the_right_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(monkeypatch, EDGE_DETECTOR_CONFIDENCE="0.4")
    with pytest.raises(ConfigError, match=r"did you mean EDGE_DETECTOR__CONFIDENCE\?"):
        load_settings(EXAMPLE)


def test_settings_and_the_projects_own_variables_still_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_env(
        monkeypatch,
        EDGE_DETECTOR__CONFIDENCE="0.4",
        edge_window__seconds="120",
        EDGE_MQTT__PASSWORD="alarm-face-parking",  # a secret: never read for words
        EDGE_MQTT__TLS__CA_FILE=str(tmp_path / "ca.pem"),
        EDGE_DEPLOYMENT__CONTROLLER="Régie du stationnement",
        **{name: str(tmp_path / "parking" / "alarm") for name in NON_SETTING_ENV},
    )
    settings = load_settings(EXAMPLE)
    assert settings.detector.confidence == 0.4 and settings.window.seconds == 120


# -- through the command line: exit 3, the reason, an audit entry ----------------------------


@pytest.mark.parametrize(
    ("config", "env"),
    [
        ({"m\u043ede": f"f{CYRILLIC_A}ce_recognition"}, {}),
        ({"Kennzeichenerkennung": True}, {}),
        ({}, {"EDGE_MODE": "face_recognition"}),
        ({}, {"EDGE_FACE_RECOGNITION": "true"}),
        ({}, {"EDGE_RILEVAMENTO": f"st{ZWSP}azionamento folla"}),
    ],
)
def test_the_cli_refuses_with_exit_3_the_reason_and_an_audit_entry(
    tmp_path: Path, audit_in_tmp: Path, config: dict[str, Any], env: dict[str, str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(example(**config), allow_unicode=True))
    result = subprocess.run(
        edge_argv("count", "-c", str(path)),
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("edge: refused: ") and " is refused. " in line
    assert "CNIL" in line or "EU AI Act" in line
    (entry,) = [json.loads(line) for line in audit_in_tmp.read_text().splitlines()]
    assert entry["event"] == "start_refused"
    assert " is refused. " in entry["refusals"][0]


def test_the_cli_calls_an_unknown_variable_a_config_error(tmp_path: Path) -> None:
    result = subprocess.run(
        edge_argv("config", "validate", "-c", str(EXAMPLE)),
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "EDGE_DETECTOR_MODEL": "x.onnx"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "edge: EDGE_DETECTOR_MODEL: no such setting; a variable sets one as EDGE_SECTION__KEY, "
        "e.g. EDGE_DETECTOR__CONFIDENCE (did you mean EDGE_DETECTOR__MODEL?)"
    ]


# -- model classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "feature"),
    [("Kennzeichen", PLATE), ("Nummernschild", PLATE), ("plaque", PLATE), ("matrícula", PLATE),
     ("targa", PLATE), ("Kfz-Kennzeichen", PLATE), ("license_plate_eu", PLATE),
     ("plaque d'immatriculation", PLATE), (f"pl{CYRILLIC_A}te", PLATE),
     ("Gesicht", FACE), ("visage", FACE), ("cara", FACE), ("volto", FACE), ("rostro", FACE),
     ("human face", FACE), (f"f{CYRILLIC_A}{ZWSP}ce", FACE), ("Gesichter", FACE),
     ("Waffe", DECREE), ("pistola", DECREE), ("arme à feu", DECREE), ("Feuer", DECREE),
     ("foule", CROWD), ("Menschenmenge", CROWD)],
)  # fmt: skip
def test_model_classes_are_read_in_five_languages(label: str, feature: str) -> None:
    found = forbidden_class(label)
    assert found is not None and found.feature == feature


COCO_NAMES = (
    "person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, "
    "fire hydrant, stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant, "
    "bear, zebra, giraffe, backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard, "
    "sports ball, kite, baseball bat, baseball glove, skateboard, surfboard, tennis racket, "
    "bottle, wine glass, cup, fork, knife, spoon, bowl, banana, apple, sandwich, orange, "
    "broccoli, carrot, hot dog, pizza, donut, cake, chair, couch, potted plant, bed, "
    "dining table, toilet, tv, laptop, mouse, remote, keyboard, cell phone, microwave, oven, "
    "toaster, sink, refrigerator, book, clock, vase, scissors, teddy bear, hair drier, toothbrush"
)
COCO = COCO_NAMES.split(", ")


@pytest.mark.parametrize("label", COCO)
def test_coco_classes_are_not_refused(label: str) -> None:
    assert forbidden_class(label) is None
