"""Turning movements: passages over two lines by the same object, paired in memory only."""

from __future__ import annotations

import pytest

from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category
from edge.analytics.movements import MovementCounter
from edge.analytics.pipeline import CameraPipeline
from edge.config import CameraConfig, MovementConfig, Settings
from edge.errors import ConfigError
from tests.conftest import make_detections

NORTH_EAST = MovementConfig.model_validate({"name": "n-e", "from": "north", "to": "east"})


def passage(line: str, t: float, direction: str = "in", category: Category = Category.VEHICLE):
    return CountEvent(line, direction, category, t)  # type: ignore[arg-type]


def test_a_passage_then_another_by_the_same_object_is_one_movement() -> None:
    counter = MovementCounter([NORTH_EAST])
    assert counter.update([passage("north", 1.0)], [7], 1.0) == []
    (event,) = counter.update([passage("east", 4.0, "out")], [7], 4.0)
    assert (event.movement, event.category, event.timestamp) == ("n-e", Category.VEHICLE, 4.0)
    assert not hasattr(event, "track_id")  # nothing of the object leaves
    # The origin is used up: the same object crossing east again is not a second movement.
    assert counter.update([passage("east", 5.0, "in")], [7], 5.0) == []


def test_other_objects_order_and_time_limit() -> None:
    counter = MovementCounter([NORTH_EAST])
    counter.update([passage("north", 0.0)], [1], 0.0)
    assert counter.update([passage("east", 1.0)], [2], 1.0) == []  # another object
    assert counter.update([passage("north", 2.0)], [2], 2.0) == []  # wrong order for 2
    assert counter.update([passage("east", 40.0)], [1], 40.0) == []  # after within_s (30)
    assert counter.tracked == 1  # object 1's north passage was forgotten at 40 s; 2's east kept


def test_directions_when_given() -> None:
    movement = MovementConfig.model_validate(
        {
            "name": "n-e",
            "from": "north",
            "to": "east",
            "from_direction": "in",
            "to_direction": "out",
        }
    )
    counter = MovementCounter([movement])
    counter.update([passage("north", 0.0, "out")], [1], 0.0)
    assert counter.update([passage("east", 1.0, "out")], [1], 1.0) == []  # left by north
    counter.update([passage("north", 2.0, "in")], [1], 2.0)
    assert counter.update([passage("east", 3.0, "in")], [1], 3.0) == []
    assert len(counter.update([passage("east", 4.0, "out")], [1], 4.0)) == 1


def test_an_origin_follows_its_object_to_the_id_the_line_counters_stitched_it_to() -> None:
    counter = MovementCounter([NORTH_EAST])
    counter.update([passage("north", 0.0)], [1], 0.0)
    assert counter.update([passage("east", 2.0)], [2], 2.0) == []  # 2 is someone else...
    counter.update([passage("north", 3.0)], [3], 3.0)
    (event,) = counter.update([passage("east", 5.0)], [4], 5.0, stitched=[(3, 4)])  # ...4 is 3
    assert event.movement == "n-e" and counter.movers == [4]


def test_both_passages_in_one_frame_are_taken_in_time_order() -> None:
    counter = MovementCounter([NORTH_EAST])
    events = counter.update([passage("east", 2.0), passage("north", 1.0)], [3, 3], 2.0)
    assert [e.movement for e in events] == ["n-e"]
    assert counter.movers == [3]


def test_state_is_forgotten_with_time() -> None:
    counter = MovementCounter([NORTH_EAST])
    for i in range(1000):
        counter.update([passage("north", float(i))], [i], float(i))
    assert counter.tracked <= 31  # objects seen within the last within_s (30 s) only


@pytest.mark.parametrize(
    ("movement", "message"),
    [
        ({"name": "a", "from": "north", "to": "nowhere"}, "nowhere"),
        ({"name": "a", "from": "north", "to": "north"}, "two different lines"),
        ({"name": "north", "from": "north", "to": "east"}, "north"),
    ],
)
def test_movements_must_name_two_lines_of_the_camera(
    movement: dict[str, str], message: str
) -> None:
    camera = {
        "id": "cam",
        "source": "x.mp4",
        "lines": [
            {"name": "north", "start": [0, 100], "end": [640, 100]},
            {"name": "east", "start": [600, 0], "end": [600, 480]},
        ],
        "movements": [movement],
    }
    with pytest.raises((ValueError, ConfigError), match=message):
        CameraConfig.model_validate(camera)


def test_the_pipeline_counts_movements_in_its_windows() -> None:
    """A car drives down through the north line, then right through the east line."""
    camera = CameraConfig.model_validate(
        {
            "id": "cam",
            "source": "x.mp4",
            "lines": [
                {"name": "north", "start": [0, 200], "end": [500, 200]},
                {"name": "east", "start": [700, 0], "end": [700, 720]},
            ],
            "movements": [{"name": "n-e", "from": "north", "to": "east"}],
        }
    )
    stages = CameraPipeline(camera, Settings(window={"seconds": 60}))
    path = [(300, 60 + 30 * i) for i in range(10)] + [(300 + 40 * i, 330) for i in range(1, 16)]
    for i, (x, y) in enumerate(path):
        stages.process(i / 5, make_detections([(x - 40, y - 30, x + 40, y + 30)], cls=2))
    (report,) = stages.close()
    assert (
        report.lines["north"]["out"][Category.VEHICLE]
        + report.lines["north"]["in"][Category.VEHICLE]
        == 1
    )
    assert report.movements == {"n-e": {c: int(c == Category.VEHICLE) for c in Category}}
