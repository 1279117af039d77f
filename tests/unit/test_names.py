"""Names are public (every report, topic, Home Assistant entity, the notice and the dashboard):
camera ids, line, zone and site names are short slugs, and neither they nor a camera's location
may carry personal data; ordinary names and places still pass."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.cli import _camera_id
from edge.config import CameraConfig, load_settings
from edge.errors import ConfigError
from tests.conftest import EXAMPLE, REPO, edge_argv

DEPLOY = REPO / "deploy" / "edge.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def named(field: str, value: str) -> dict[str, Any]:
    """The shipped example with one name or the location replaced."""
    data = example()
    camera = data["cameras"][0]
    if field == "id":
        camera["id"] = value
    elif field == "location":
        camera["location"] = value
    elif field == "lines":
        camera["lines"][0]["name"] = value
    elif field == "zones":
        camera["zones"] = [{"name": value, "points": [[0, 0], [100, 0], [100, 100]]}]
    else:
        data["mqtt"] = {"site": value}
    return data


WHERE = {
    "id": "cameras[0].id",
    "location": "cameras[0].location",
    "lines": "cameras[0].lines[0].name",
    "zones": "cameras[0].zones[0].name",
    "site": "mqtt.site",
}


def config_error(field: str, value: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, **named(field, value))
    (line,) = caught.value.lines
    assert line.startswith(WHERE[field] + ": "), line
    return line


PERSONAL_NAMES = [
    # titles, in five languages
    ("id", "mr-dupont"), ("lines", "mme-martin"), ("zones", "dr_house"), ("site", "herr-mueller"),
    ("id", "frau-schmidt"), ("lines", "sra-garcia"), ("zones", "signora-rossi"),
    ("site", "mlle-durand"), ("id", "monsieur-petit"), ("lines", "sig-bianchi"),
    # flats, doors and floors
    ("id", "apt-4"), ("lines", "flat12"), ("zones", "appartement-3b"), ("site", "porte-12"),
    ("id", "wohnung-5"), ("lines", "piso-3"), ("zones", "interno-7"), ("site", "3e-etage"),
    ("id", "2nd-floor"), ("lines", "door_21"),
    # phone numbers
    ("id", "0612345678"), ("lines", "06-12-34-56-78"), ("zones", "0049-30-1234567"),
    ("site", "00393471234567"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), PERSONAL_NAMES)
def test_a_name_that_looks_like_personal_data_is_refused_naming_the_field(
    field: str, value: str
) -> None:
    line = config_error(field, value)
    assert "looks like personal data" in line and "names are public" in line


NOT_SLUGS = ["Mr.Dupont", "jean.dupont@example.org", "Cam1", "north gate", "café", "x" * 33,
             "-north", "a/b", "ca\u200bm"]  # fmt: skip


@pytest.mark.parametrize("field", ["id", "lines", "zones", "site"])
@pytest.mark.parametrize("value", NOT_SLUGS)
def test_a_name_is_a_short_slug(field: str, value: str) -> None:
    assert "should match pattern" in config_error(field, value)


PERSONAL_LOCATIONS = [
    "Rue des Lilas, devant chez M. Dupont", "Facing Mrs Smith's house", "Bei Frau Müller",
    "Calle Mayor, Sra. García", "Apt 4, 12 rue de la Paix", "flat 12, Station Road",
    "Wohnung 5, Hauptstraße 3", "3e étage, côté cour", "2. OG links", "piso 3, Calle Mayor",
    "interno 7, Via Roma", "contact: jean.dupont@example.fr", "tel +33 6 12 34 56 78",
    "Tel. 030 1234 5678",
]  # fmt: skip


@pytest.mark.parametrize("location", PERSONAL_LOCATIONS)
def test_a_location_that_looks_like_personal_data_is_refused(location: str) -> None:
    line = config_error("location", location)
    assert "looks like personal data" in line and "the location is public" in line


LEGITIMATE = [("id", "north-gate"), ("id", "rue-de-la-paix"), ("id", "cam1"),
              ("lines", "porte-de-clichy"), ("zones", "place_d_armes"), ("site", "gare-nord"),
              ("lines", "a"), ("zones", "x" * 32), ("id", "cam-2024"), ("lines", "gate-3"),
              ("location", "Parking Saint-Jean, entrée nord"),
              ("location", "Rue de la Gare, station forecourt, facing north"),
              ("location", "10 m from the gate, Ocean Dr, north side"),
              ("location", "Place d'Armes, côté mairie"),
              ("location", "Piazza del Duomo 1, Milano"),
              ("location", "Campus path, TUD (MOT15 TUD-Campus recording)")]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), LEGITIMATE)
def test_ordinary_names_and_places_pass(field: str, value: str) -> None:
    load_settings(None, **named(field, value))


@pytest.mark.parametrize("path", [EXAMPLE, DEPLOY, REPO / "benchmarks" / "bench.yaml"])
def test_the_shipped_configurations_pass(path: Path) -> None:
    load_settings(path)


@pytest.mark.parametrize(
    ("clip", "camera"),
    [("TUD-Campus.mp4", "tud-campus"), ("degirum_traffic2_intersection_960x540.mp4",
     "degirum_traffic2_intersection_96"), ("Parking Lot.avi", "camera"),
     ("mr-smith.mp4", "camera"), ("Überweg.mkv", "berweg"), ("0612345678.mp4", "camera")],
)  # fmt: skip
def test_a_clips_camera_id_is_a_publishable_slug(clip: str, camera: str) -> None:
    assert _camera_id(Path(clip)) == camera
    CameraConfig(id=_camera_id(Path(clip)), source=clip)


@pytest.mark.parametrize("line", ["mr-dupont", "flat-12", "0612345678"])
def test_a_line_given_on_the_command_line_is_checked_too(tmp_path: Path, line: str) -> None:
    result = subprocess.run(
        edge_argv("count", str(tmp_path / "clip.mp4"), "-c", str(EXAMPLE), "--line",
                  f"{line}=0,0,10,10"),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith("edge: camera.lines[1].name: ") and "personal data" in error


def test_the_readme_says_names_and_locations_are_public() -> None:
    text = " ".join((REPO / "README.md").read_text().split())
    assert "Names and locations are public" in text
