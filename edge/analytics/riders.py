"""Rider association: a person on a bicycle or motorcycle is counted once, as that vehicle.

The detector reports a cyclist as a ``person`` box and a ``bicycle`` box, and the tracker follows
them as two tracks, which the counters would count as one pedestrian plus one bike. This stage
sits between the tracker and the counters and decides, from evidence over several frames, which
person tracks ride which bicycle or motorcycle track (a "vehicle" here). An established rider
no longer appears as a person: when its vehicle is in the frame the rider row is dropped; when
the detector missed the vehicle, the vehicle's box is rebuilt from the rider's (their offset as
last seen together) and output under the vehicle's id and class, so the counters keep following
one object, with one id, one category and a steady ground anchor. Several persons may ride
one vehicle (a motorcycle with a passenger), each person rides at most one.

"Riding" is judged on the two boxes of one frame (frame pixels, x right, y down), in fractions
of the boxes' own sizes so it holds at any distance from the camera: the boxes overlap
horizontally, the person's bottom edge (feet on pedals or footrests) lies within the vehicle's
vertical span, the person's centre is above the vehicle's, and the two heights are of
comparable scale. One frame proves little (a pedestrian crossing behind a parked bicycle fits
for a moment), so a pair becomes a rider association only after ``min_frames`` net frames of
evidence, and dissolves after ``release_frames`` consecutive frames in which both are visible
and the geometry fails.

Frames, not seconds: ``update`` has no timestamp, so every duration here is a count of updates
(processed frames). The same configuration therefore means five times longer at a 5 fps detector
rate than at 25 fps.

Track ids are in-memory only: nothing here logs, prints or exposes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.analytics.detections import BICYCLE, MOTORCYCLE, PERSON
from edge.analytics.track import Tracks


class RiderConfig(BaseModel):
    """Rider association thresholds. Fractions are of box sizes in frame pixels; durations are
    counts of ``update`` calls (processed frames).

    min_overlap (0.5): horizontal overlap of person and vehicle boxes, as a fraction of the
        narrower box's width. A rider sits over the vehicle: side-on the person box lies
        entirely within the vehicle's length, head-on the two boxes almost coincide, so real
        pairs score near 1. Half leaves room for leaning, box noise and a passenger sitting
        off-centre, while a person standing beside the vehicle overlaps little or not at all.
    foot_tolerance (0.2): the person's bottom edge must lie within the vehicle box's vertical
        span widened by this fraction of the vehicle's height on each side. Feet on pedals or
        footrests are inside that span; the lower pedal nearly touches the ground, and box
        edges are noisy by a few percent, hence a margin. Wider would admit a pedestrian
        standing in front of the vehicle (closer to the camera, so lower in the image).
    min_height_ratio (0.5) and max_height_ratio (3.0): the person box's height over the vehicle
        box's. A seated adult spans roughly 1.2 to 1.7 times a bicycle's box and 1.0 to 1.4
        times a motorcycle's, and a child on a child's bicycle scales with it. The wide band
        allows for riders partly hidden behind the vehicle or another object; outside it the
        person is at another distance from the camera than the vehicle (perspective), e.g. a
        distant pedestrian seen just above a nearby parked bicycle.
    min_frames (3): net frames in which a person's best vehicle fits (each fitting frame adds
        one, each frame with both visible and no fit removes one) before the person counts as
        its rider. Two frames of coincidence, e.g. a pedestrian crossing in front of a bicycle,
        are not enough; each extra frame is a frame in which a cyclist still passes through as
        pedestrian plus bike and may be counted twice if it crosses a line then (3 frames are
        0.12 s at 25 fps, 0.6 s or some 3 m of cycling at 5 fps).
    release_frames (6): consecutive frames with both tracks visible and the geometry failing
        before an association dissolves, e.g. when a cyclist dismounts and walks away.
        Longer than ``min_frames`` because breaking an association by mistake makes a
        pedestrian appear mid-view (a false count), while dissolving late only hides a
        dismounted rider for a moment; a lean or an occlusion may spoil the boxes for a frame
        or two.
    forget_frames (30): state of a pair is dropped once either track has been absent for more
        than this many frames, so memory stays bounded by the tracks present recently. The
        tracker may bring a track back with the same id after a gap of up to its
        ``lost_seconds`` (1 s by default), which is 25 to 30 frames at full video rate; within
        that time an established rider whose vehicle is missed is still output as the vehicle.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_overlap: float = Field(
        default=0.5, gt=0, le=1, description="Horizontal overlap / narrower box width."
    )
    foot_tolerance: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Margin around the vehicle's vertical span, of its height.",
    )
    min_height_ratio: float = Field(
        default=0.5, gt=0, le=10, description="Lowest person height / vehicle height."
    )
    max_height_ratio: float = Field(
        default=3.0, gt=0, le=10, description="Highest person height / vehicle height."
    )
    min_frames: int = Field(
        default=3, ge=1, le=100, description="Net frames of evidence before a person is a rider."
    )
    release_frames: int = Field(
        default=6, ge=1, le=1000, description="Consecutive failing frames that end an association."
    )
    forget_frames: int = Field(
        default=30, ge=0, le=10000, description="Frames a track may be absent before its pairs go."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RiderConfig:
        if self.min_height_ratio > self.max_height_ratio:
            raise ValueError(
                "need min_height_ratio <= max_height_ratio, got "
                f"{self.min_height_ratio} and {self.max_height_ratio}"
            )
        return self


def riding_fit(
    persons: npt.NDArray[np.float32], vehicles: npt.NDArray[np.float32], config: RiderConfig
) -> npt.NDArray[np.float32]:
    """How well each person box sits on each vehicle box, float32 (P, V).

    persons (P, 4) and vehicles (V, 4) are xyxy boxes in frame pixels (y down). The value is the
    horizontal overlap as a fraction of the narrower width, in (0, 1], where the riding geometry
    holds (see ``RiderConfig``) and 0 where it does not. Degenerate or non-finite boxes never fit.
    """
    p = persons[:, :, None]  # (P, 4, 1): coordinate rows broadcast against vehicle columns
    v = vehicles.T[:, None, :]  # (4, 1, V)
    px1, py1, px2, py2 = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    vx1, vy1, vx2, vy2 = v[0], v[1], v[2], v[3]
    narrower = np.minimum(px2 - px1, vx2 - vx1)
    overlap = np.minimum(px2, vx2) - np.maximum(px1, vx1)
    ph, vh = py2 - py1, vy2 - vy1
    margin = np.float32(config.foot_tolerance) * vh
    with np.errstate(invalid="ignore"):
        fits = (
            (narrower > 0)
            & (vh > 0)
            & (overlap >= np.float32(config.min_overlap) * narrower)
            & (py2 >= vy1 - margin)
            & (py2 <= vy2 + margin)
            & (py1 + py2 < vy1 + vy2)  # centre above centre
            & (ph >= np.float32(config.min_height_ratio) * vh)
            & (ph <= np.float32(config.max_height_ratio) * vh)
        )
    quality = np.zeros(fits.shape, np.float32)
    np.divide(overlap, narrower, out=quality, where=fits)
    return np.minimum(quality, np.float32(1.0))


@dataclass(slots=True)
class _Pair:
    """Evidence about one (person, vehicle) track pair; frames are update counts."""

    person_seen: int
    vehicle_seen: int
    vehicle_class: int
    score: int = 0  # net fitting frames while not yet associated
    misses: int = 0  # consecutive failing frames while associated
    associated: bool = False
    # The vehicle's box relative to the person's, in person box sizes (dx1, dy1, dx2, dy2), as
    # last seen together: rebuilds the vehicle's box, hence its ground anchor, when it is missed.
    offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def _relative(
    vehicle: npt.NDArray[np.float32], person: npt.NDArray[np.float32]
) -> tuple[float, float, float, float]:
    w, h = max(float(person[2] - person[0]), 1.0), max(float(person[3] - person[1]), 1.0)
    d = (vehicle - person).tolist()
    return (d[0] / w, d[1] / h, d[2] / w, d[3] / h)


def _absolute(
    offset: tuple[float, float, float, float], person: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    w, h = max(float(person[2] - person[0]), 1.0), max(float(person[3] - person[1]), 1.0)
    return (person + np.array(offset, np.float32) * np.array([w, h, w, h], np.float32)).astype(
        np.float32
    )


class RiderAssociation:
    """Decides, over several frames, which person tracks ride which bicycle/motorcycle track.

    Not thread-safe; one instance per tracker. All state is per (person, vehicle) pair of
    track ids and is dropped with the tracks (see ``RiderConfig.forget_frames``).
    """

    def __init__(self, config: RiderConfig | None = None) -> None:
        self.config = config or RiderConfig()
        self._frame = 0
        self._pairs: dict[tuple[int, int], _Pair] = {}

    def reset(self) -> None:
        """Forget every pair (e.g. together with ``ByteTracker.reset``)."""
        self._frame = 0
        self._pairs = {}

    @property
    def pair_count(self) -> int:
        """(person, vehicle) pairs held internally, candidates and associations alike."""
        return len(self._pairs)

    def update(self, tracks: Tracks) -> Tracks:
        """Take one frame's tracker output, return it with riders merged into their vehicles.

        Person rows of established riders are dropped when their vehicle is present. When it
        is not, they stand in for it under the vehicle's id and class, with the vehicle's box
        rebuilt from the rider's (their offset as last seen together, averaged over riders) so
        the ground anchor does not jump to the rider's feet, and the riders' highest
        confidence. Every other row passes unchanged; rows stay ordered by track id. The input
        is returned as it is when nothing changes (it is read-only).
        """
        self._frame += 1
        present = {track_id: row for row, track_id in enumerate(tracks.track_id.tolist())}
        chosen = self._best_vehicles(tracks, present)
        if chosen or self._pairs:
            self._observe(chosen, present, tracks)
        return self._merge(tracks, present)

    # -- steps ------------------------------------------------------------------------------

    def _best_vehicles(self, tracks: Tracks, present: dict[int, int]) -> set[tuple[int, int]]:
        """(person id, vehicle id) for each person whose riding geometry holds with a vehicle
        present in this frame: the best-fitting one, an established association first."""
        cls = tracks.class_id
        persons = np.flatnonzero(cls == PERSON)
        vehicles = np.flatnonzero((cls == BICYCLE) | (cls == MOTORCYCLE))
        if len(persons) == 0 or len(vehicles) == 0:
            return set()
        fit = riding_fit(tracks.xyxy[persons], tracks.xyxy[vehicles], self.config)
        hit = np.flatnonzero(fit.any(axis=1))
        if len(hit) == 0:
            return set()
        person_ids: list[int] = tracks.track_id[persons].tolist()
        vehicle_ids: list[int] = tracks.track_id[vehicles].tolist()
        # Hysteresis: while an association's geometry holds it beats any other candidate, so a
        # rider between two close bicycles does not flip from one to the other.
        if self._pairs:
            row = {pid: i for i, pid in enumerate(person_ids)}
            col = {vid: j for j, vid in enumerate(vehicle_ids)}
            for (pid, vid), pair in self._pairs.items():
                if pair.associated and pid in row and vid in col and fit[row[pid], col[vid]] > 0:
                    fit[row[pid], col[vid]] += 1.0
        best: list[int] = fit[hit].argmax(axis=1).tolist()
        return {(person_ids[i], vehicle_ids[j]) for i, j in zip(hit.tolist(), best, strict=True)}

    def _observe(
        self, chosen: set[tuple[int, int]], present: dict[int, int], tracks: Tracks
    ) -> None:
        """Add this frame's evidence to every pair, then drop pairs that are over."""
        classes: list[int] = tracks.class_id.tolist()
        cfg = self.config
        frame = self._frame
        pairs = self._pairs
        for key in chosen:
            if key not in pairs:
                pairs[key] = _Pair(frame, frame, classes[present[key[1]]])
        newly: list[tuple[int, int]] = []
        for key, pair in list(pairs.items()):
            pid, vid = key
            if pid in present:
                pair.person_seen = frame
            if vid in present:
                pair.vehicle_seen = frame
                pair.vehicle_class = classes[present[vid]]
            if key in chosen:
                pair.offset = _relative(tracks.xyxy[present[vid]], tracks.xyxy[present[pid]])
                pair.misses = 0
                if not pair.associated:
                    pair.score += 1
                    if pair.score >= cfg.min_frames:
                        pair.associated = True
                        newly.append(key)
            elif pid in present and vid in present:
                if pair.associated:
                    pair.misses += 1
                    if pair.misses >= cfg.release_frames:
                        del pairs[key]
                        continue
                else:
                    pair.score -= 1
                    if pair.score <= 0:
                        del pairs[key]
                        continue
            if (
                frame - pair.person_seen > cfg.forget_frames
                or frame - pair.vehicle_seen > cfg.forget_frames
            ):
                del pairs[key]
        # Each person rides at most one vehicle: a new association replaces an older one.
        for pid, vid in newly:
            for other in [k for k, p in pairs.items() if k[0] == pid and k[1] != vid]:
                if pairs[other].associated:
                    del pairs[other]

    def _merge(self, tracks: Tracks, present: dict[int, int]) -> Tracks:
        """The output rows: riders dropped, or standing in for their missing vehicle."""
        dropped: list[int] = []
        standing_in: dict[int, list[npt.NDArray[np.float32]]] = {}  # vehicle id -> rebuilt boxes
        riders_of: dict[int, list[int]] = {}  # missing vehicle id -> rows of its riders
        classes: list[int] = []  # of the missing vehicles, in the order of ``standing_in``
        for (pid, vid), pair in self._pairs.items():
            if pair.associated and pid in present:
                dropped.append(present[pid])
                if vid not in present:
                    if vid not in standing_in:
                        standing_in[vid], riders_of[vid] = [], []
                        classes.append(pair.vehicle_class)
                    rider = tracks.xyxy[present[pid]]
                    standing_in[vid].append(_absolute(pair.offset, rider))
                    riders_of[vid].append(present[pid])
        if not dropped:
            return tracks
        keep = np.ones(len(tracks), bool)
        keep[dropped] = False
        if not standing_in:
            return tracks[keep]
        vehicle_ids = list(standing_in)
        boxes = np.empty((len(vehicle_ids), 4), np.float32)
        conf = np.empty(len(vehicle_ids), np.float32)
        for k, vid in enumerate(vehicle_ids):
            boxes[k] = np.mean(standing_in[vid], axis=0)
            conf[k] = tracks.confidence[riders_of[vid]].max()
        track_id = np.concatenate([tracks.track_id[keep], np.asarray(vehicle_ids, np.int64)])
        order = np.argsort(track_id, kind="stable")
        return Tracks(
            np.concatenate([tracks.xyxy[keep], boxes])[order],
            track_id[order],
            np.concatenate([tracks.class_id[keep], np.asarray(classes, np.int16)])[order],
            np.concatenate([tracks.confidence[keep], conf])[order],
        )
