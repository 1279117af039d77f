"""Turning movements leave the box under the same rules as lines: version 2 of the closed
schema, small counts and derived counts hidden, version 1 unchanged without movements."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edge.analytics.aggregate import CountReport
from edge.analytics.detections import CATEGORIES, Category
from edge.config import PACKAGE_ROOT, load_settings
from edge.errors import ConfigError
from edge.legal.audit import AuditLog
from edge.legal.disclosure import cells_of, overlap
from edge.legal.gate import EgressGate, startup_gate
from edge.legal.notice import notice_sections
from edge.legal.policy import Policy, load_policy
from edge.publish.sinks import CollectSink
from edge.schema import MovementsReport, PublishedReport, parse_report
from tests.conftest import EXAMPLE

TODAY = dt.date(2026, 11, 22)
POLICY = load_policy(PACKAGE_ROOT / "policies" / "cnil-statistics.yaml")
STRICT = load_policy(PACKAGE_ROOT / "policies" / "cnil-statistics-strict.yaml")
MOVEMENTS_POLICY = load_policy(PACKAGE_ROOT / "policies" / "cnil-statistics-movements.yaml")
START = 1_800_000_000.0
LINES, MOVEMENTS = ["north", "east"], ["n-e"]


def window(turned: int, straight: int) -> CountReport:
    """``turned`` cars in by the north line and out by the east line (the n-e movement), and
    ``straight`` cars in by the north line only; the overlap the pipeline would hand over."""
    cells = {cell: i for i, cell in enumerate(cells_of(LINES, MOVEMENTS))}
    car = Category.VEHICLE.value
    turn = {
        cells[("north", "in", car)]: 1,
        cells[("east", "out", car)]: 1,
        cells[("n-e", None, car)]: 1,
    }
    passes = [turn] * turned + [{cells[("north", "in", car)]: 1}] * straight
    none = dict.fromkeys(CATEGORIES, 0)
    return CountReport(
        camera_id="cam",
        start=START,
        end=START + 60,
        lines={
            "north": {"in": {**none, Category.VEHICLE: turned + straight}, "out": dict(none)},
            "east": {"in": dict(none), "out": {**none, Category.VEHICLE: turned}},
        },
        zones={},
        frames=300,
        observed_s=60.0,
        partial=False,
        movements={"n-e": {**none, Category.VEHICLE: turned}},
        movement_lines={"n-e": ("north", "east")},
        overlap=overlap(passes, len(cells)),
    )


def gate(tmp_path: Path, policy: object) -> tuple[EgressGate, CollectSink]:
    sink = CollectSink()
    egress = EgressGate(policy, AuditLog(tmp_path / "a.jsonl"), [sink], "https://example.org/n")  # type: ignore[arg-type]
    return egress, sink


def test_a_report_with_movements_is_version_2_and_one_without_is_version_1(tmp_path: Path) -> None:
    egress, _ = gate(tmp_path, POLICY)
    published = egress.publish(window(turned=6, straight=2), TODAY)
    assert isinstance(published, MovementsReport)
    assert published.schema_version == 2
    assert published.movement_counts == {"n-e": {"pedestrian": 0, "bike": 0, "vehicle": 6}}
    assert (published.movements["n-e"].origin, published.movements["n-e"].destination) == (
        "north",
        "east",
    )
    plain = CountReport(**{**window(6, 2).__dict__, "movements": {}, "movement_lines": {}})
    payload = egress.payload(plain)
    assert payload["schema_version"] == 1 and "movements" not in payload
    assert type(parse_report(payload)) is PublishedReport


def test_a_movements_report_is_closed(tmp_path: Path) -> None:
    egress, _ = gate(tmp_path, POLICY)
    payload = egress.payload(window(6, 2))
    with pytest.raises(ValueError):
        parse_report({**payload, "schema_version": 1})  # movements are not in version 1
    with pytest.raises(ValueError):
        parse_report({**payload, "movements": {"n-e": {**payload["movements"]["n-e"], "id": 1}}})
    with pytest.raises(ValueError):  # a movement between lines the report does not have
        figures = {**payload["movements"]["n-e"], "destination": "west"}
        parse_report({**payload, "movements": {"n-e": figures}})


def test_a_movement_one_short_of_its_line_is_not_published_whole(tmp_path: Path) -> None:
    """North in = 7, north-to-east = 6: published both, they would tell that one car went
    straight on. One of them is hidden under a suppressing policy; both go out under none."""
    egress, _ = gate(tmp_path, STRICT)
    payload = egress.payload(window(turned=6, straight=1))
    north_in = payload["lines"]["north"]["in"]["vehicle"]
    turned = payload["movements"]["n-e"]["counts"]["vehicle"]
    assert 0 in (north_in, turned)
    assert not 0 < north_in - turned < STRICT.small_counts.k
    egress, _ = gate(tmp_path, POLICY)
    payload = egress.payload(window(turned=6, straight=1))
    assert payload["movements"]["n-e"]["counts"]["vehicle"] == 6


def test_a_movement_below_k_is_published_as_zero(tmp_path: Path) -> None:
    egress, _ = gate(tmp_path, STRICT)
    payload = egress.payload(window(turned=1, straight=9))
    assert payload["movements"]["n-e"]["counts"]["vehicle"] == 0
    assert payload["lines"]["east"]["out"]["vehicle"] == 0  # the same one car
    assert payload["lines"]["north"]["in"]["vehicle"] == 10


def junction() -> dict[str, object]:
    """The shipped example with two lines and a movement between them."""
    settings = load_settings(EXAMPLE)
    camera = settings.cameras[0].model_dump(by_alias=True)
    camera["lines"] = [
        {"name": "west", "start": [160, 0], "end": [160, 480]},
        {"name": "east", "start": [480, 0], "end": [480, 480]},
    ]
    camera["movements"] = [{"name": "west-east", "from": "west", "to": "east", "within_s": 20}]
    return camera


@pytest.mark.parametrize(("policy", "allowed"), [(POLICY, False), (MOVEMENTS_POLICY, True)])
def test_movements_need_a_policy_that_allows_them(policy: Policy, allowed: bool) -> None:
    pin = {"file": f"policies/{policy.name}.yaml", "sha256": policy.sha256}
    settings = load_settings(EXAMPLE, cameras=[junction()], policy=pin)
    result = startup_gate(settings, policy, settings.cameras, None, TODAY)
    refused = [d.rule for d in result.refusals]
    assert ("camera[tud-campus].turning_movements" in refused) is not allowed
    assert not [r for r in refused if r != "camera[tud-campus].turning_movements"]


@pytest.mark.parametrize(("lang", "words"), [("en", "Turning movements"), ("fr", "Mouvements")])
def test_the_notice_says_movements_are_counted_and_how_long_passages_are_paired(
    lang: str, words: str
) -> None:
    settings = load_settings(EXAMPLE, cameras=[junction()])
    sections = notice_sections(settings.deployment, MOVEMENTS_POLICY, settings.cameras, lang)  # type: ignore[arg-type]
    text = " ".join(line for _, lines in sections for line in lines)
    assert words in text and "20 s" in text.replace(" secondes", " s").replace(" seconds", " s")
    assert "1 " in text and ("turning movement" in text or "mouvement(s)" in text)


def test_a_policy_with_movements_must_suppress_small_counts(tmp_path: Path) -> None:
    """One object's movement is its route: no policy may publish a movement count of 1."""
    shipped = (PACKAGE_ROOT / "policies" / "cnil-statistics-movements.yaml").read_text()
    assert MOVEMENTS_POLICY.small_counts.rule == "suppress"
    weak = tmp_path / "weak.yaml"
    weak.write_text(shipped.replace("  rule: suppress", "  rule: none"))
    with pytest.raises(ConfigError, match=r"turning_movements without small_counts\.rule"):
        load_policy(weak)
