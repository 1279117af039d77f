"""A ByteTrack-style multi-object tracker in NumPy: detections in, stable in-memory ids out.

Per frame: expire tracks unseen for longer than ``lost_seconds``, predict every remaining track
to the frame's timestamp with a constant-velocity Kalman filter on (cx, cy, w, h), then associate
in three stages: by IoU of the predicted box, confident detections against every track (stage
1), then the leftover less confident detections (typically partly occluded objects) against
tracks that were matched in the previous frame (stage 2, ByteTrack's); finally the confident
leftovers against every leftover track by predicted position, gated by the filter's own
uncertainty (stage 3). A box more than 1.5x taller or shorter than the track's never extends
it. Association never crosses categories (pedestrian, bike, vehicle), so a car that the
detector calls a truck for a frame keeps its track while a person is never glued onto a
bicycle box. Unmatched confident detections start tentative tracks, which are output once
matched ``min_hits`` times. Motion only: nothing of anyone's appearance is ever compared.

Time, not frames: the filter uses the real time step between timestamps and tracks expire after
``lost_seconds``, so the same configuration behaves alike at 25 fps, at a 5 fps detector rate and
with irregular frame spacing (dropped frames just make a longer step).

At 5 fps an object moves five times further between detections than at 25 fps. Once a track has
two observations its velocity is known and the box predicted for the new timestamp overlaps the
new detection at any steady speed. A new track's second observation has only the first box to
overlap with: a car crossing the view side-on at 50 km/h moves some 60 % of its length between
detections at 5 fps, and a faster or closer one does not overlap at all. Stage 3 takes those:
an unknown velocity means a wide gate (the filter starts with a velocity uncertainty of two box
sizes per second), which narrows as the track's velocity is learnt. The same stage catches an
object back from behind an occluder away from where its track coasted to.

Ids are per tracker instance, start at 1 and are never reused, not even after ``reset()``.
They are in-memory only and must not be logged or published.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.analytics.assignment import max_weight_matching
from edge.analytics.detections import COUNTED_CLASS_IDS, Detections, check_array
from edge.analytics.geometry import box_iou

# Kalman noise, as fractions of the box size (w for x and w, h for y and h). The values follow
# BoT-SORT's per-frame weights (1/20 position, 1/160 velocity at 30 fps) turned into rates per
# second, so the filter does not depend on the frame rate. Size velocity gets less freedom than
# position velocity: boxes change size only slowly (perspective), and a noisy size velocity
# would make a coasting box balloon or collapse.
_MEASUREMENT_STD = 0.05  # detector box noise
_POSITION_RATE_STD = (0.25, 0.25, 0.25, 0.25)  # per sqrt(second): cx, cy, w, h
_VELOCITY_RATE_STD = (1.0, 1.0, 0.25, 0.25)  # per second per sqrt(second)
_INITIAL_POSITION_STD = 0.1
_INITIAL_VELOCITY_STD = (2.0, 2.0, 0.5, 0.5)  # per second: unknown at birth, let data decide
_MIN_SIZE = 1.0  # pixels; a predicted box never shrinks below this
MAX_HEIGHT_RATIO = 1.5  # see _alike; the line counters' stitching uses it too


class TrackerConfig(BaseModel):
    """Tracker thresholds. Confidences are detector scores in [0, 1]; IoU thresholds in (0, 1].

    high_confidence (0.4): detections at or above it take part in the first association and may
        start tracks. ByteTrack's 0.5 was set for detectors trained on pedestrian data; the
        COCO nano models this product runs score clearly visible people lower (0.5-0.9) and
        partly occluded ones at 0.25-0.5, so the thresholds sit 0.1 lower. It must stay well
        above the detector's own cut-off (0.25), otherwise the second stage sees nothing.
    low_confidence (0.1): detections below it are ignored. Between the two thresholds a
        detection can only extend a track that was matched in the previous frame, never start
        one, which is how ByteTrack keeps ids through occlusion without admitting clutter. This
        only works if the detector passes such detections on: a detector cut-off at 0.25 makes
        the effective second-stage band [0.25, 0.4).
    new_track_confidence (0.5): a little above ``high_confidence`` (ByteTrack uses +0.1) so that
        borderline detections extend tracks but do not start them; every new track risks a
        false count.
    match_iou (0.2): minimum IoU between a predicted track box and a confident detection. Low,
        because a confident detection next to a prediction is almost always the same object and
        because boxes overlap little at low frame rates or when an object turns (see module).
    low_match_iou (0.5): minimum IoU in the second stage. Stricter, because low scores include
        clutter and fragments of neighbouring objects.
    lost_seconds (1.0): how long an unmatched track coasts on its prediction and can be picked up
        again with the same id, e.g. a pedestrian passing behind another one or a pole. ByteTrack
        keeps 30 frames at 30 fps, the same second. Longer gaps let a coasting prediction drift
        onto another object; those objects are better counted twice than swapped.
    min_hits (2): matched detections before a track is output. One spurious detection never
        becomes a track; the cost is one detector frame of delay, and the first frame is not
        lost to counting since a line or zone needs two positions anyway.
    motion_gate (20): the third association stage's gate, a squared Mahalanobis distance
        between a leftover confident detection's centre and a leftover track's predicted
        centre under the filter's own uncertainty; 0 turns the stage off. It catches what
        overlap cannot: a new track's second observation, a fast object at a low detector
        rate, an object back from behind an occluder. The gate widens by itself with the time
        since the last observation and shrinks as the velocity is learnt; a height more than
        1.5x off never matches. 9.21 would hold 99 % of a 2-D Gaussian, but the filter's noise
        model is rough: 20 won the leave-one-sequence-out choice (tracking_eval.py --tune).
    smooth_boxes (True, chosen the same way): output the filter's box for a matched track
        rather than the raw detection, so the anchor the counters use does not jump with the
        detector's noise.
    stitch_gate (0.5, chosen the same way): used by the line counters, not here: a new track
        whose first anchor lies within this many box heights of where a track lost moments
        ago would be now is taken for it (``edge.analytics.counting``); 0 turns it off.
    duplicate_iou (0.7): an unmatched detection overlapping a detection already matched this
        frame (or a new track started this frame) of the same category by more than this does
        not start a track. Detectors run NMS per class, so one vehicle often yields both a
        "car" and a "truck" box; without this it would be tracked, and counted, twice. Two real
        objects of one class rarely overlap this much after NMS.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_confidence: float = Field(default=0.4, gt=0, le=1)
    low_confidence: float = Field(default=0.1, ge=0, le=1)
    new_track_confidence: float = Field(default=0.5, gt=0, le=1)
    match_iou: float = Field(default=0.2, gt=0, le=1)
    low_match_iou: float = Field(default=0.5, gt=0, le=1)
    lost_seconds: float = Field(default=1.0, ge=0, le=60)
    min_hits: int = Field(default=2, ge=1, le=30)
    duplicate_iou: float = Field(default=0.7, gt=0, le=1)
    motion_gate: float = Field(default=20.0, ge=0, le=100)
    smooth_boxes: bool = True
    stitch_gate: float = Field(default=0.5, ge=0, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> TrackerConfig:
        if not self.low_confidence <= self.high_confidence <= self.new_track_confidence:
            raise ValueError(
                "need low_confidence <= high_confidence <= new_track_confidence, got "
                f"{self.low_confidence}, {self.high_confidence}, {self.new_track_confidence}"
            )
        return self


@dataclass(frozen=True, eq=False)
class Tracks:
    """Confirmed tracks matched to a detection in one frame, column-oriented, ordered by id.

    xyxy: float32 (M, 4), the track's box in this frame: the filter's estimate after the
        matched detection (``smooth_boxes``) or that detection itself, frame pixels, x right,
        y down.
    track_id: int64 (M,), in-memory ids of one tracker instance, never reused.
    class_id: int16 (M,), the track's COCO class: confidence-weighted majority vote over its
        matched detections, so label flicker (car/truck) does not change it frame to frame.
    confidence: float32 (M,), the matched detection's score.

    Arrays are made read-only on construction.
    """

    xyxy: npt.NDArray[np.float32]
    track_id: npt.NDArray[np.int64]
    class_id: npt.NDArray[np.int16]
    confidence: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        m = len(self.track_id)
        check_array("xyxy", self.xyxy, (m, 4), np.float32)
        check_array("track_id", self.track_id, (m,), np.int64)
        check_array("class_id", self.class_id, (m,), np.int16)
        check_array("confidence", self.confidence, (m,), np.float32)
        for array in (self.xyxy, self.track_id, self.class_id, self.confidence):
            array.flags.writeable = False

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.empty((0, 4), np.float32),
            np.empty(0, np.int64),
            np.empty(0, np.int16),
            np.empty(0, np.float32),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> Tracks:
        """Rows selected by a boolean mask, an index array or a slice, as a new object."""
        return Tracks(
            np.ascontiguousarray(self.xyxy[index]),
            np.ascontiguousarray(self.track_id[index]),
            np.ascontiguousarray(self.class_id[index]),
            np.ascontiguousarray(self.confidence[index]),
        )

    def as_detections(self) -> Detections:
        """The same boxes, scores and (voted) classes as ``Detections``, without ids."""
        return Detections(self.xyxy, self.confidence, self.class_id)

    @property
    def category_index(self) -> npt.NDArray[np.int8]:
        """Index into ``edge.analytics.detections.CATEGORIES`` for each row."""
        return self.as_detections().category_index


def _to_cxcywh(xyxy: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    out = np.empty((len(xyxy), 4), np.float64)
    out[:, 0] = (xyxy[:, 0] + xyxy[:, 2]) * 0.5
    out[:, 1] = (xyxy[:, 1] + xyxy[:, 3]) * 0.5
    out[:, 2] = xyxy[:, 2] - xyxy[:, 0]
    out[:, 3] = xyxy[:, 3] - xyxy[:, 1]
    return out


def _to_xyxy(cxcywh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    half = cxcywh[:, 2:4] * 0.5
    return np.concatenate([cxcywh[:, 0:2] - half, cxcywh[:, 0:2] + half], axis=1)


def _size4(cxcywh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(w, h, w, h) per row: the scale that every noise term is relative to."""
    return np.tile(np.maximum(cxcywh[:, 2:4], _MIN_SIZE), 2)


def _alike(
    tracks: npt.NDArray[np.floating], detections: npt.NDArray[np.floating]
) -> npt.NDArray[np.bool_]:
    """Pairs (tracks x detections, xyxy) whose heights differ by less than ``MAX_HEIGHT_RATIO``.

    A box that overlaps the prediction but is far taller or shorter is another object, two
    merged ones, or a part of this one (legs hidden): all of them move the anchor the counters
    use by much more than the object moved, so they never extend a track."""
    th = np.maximum(tracks[:, 3] - tracks[:, 1], _MIN_SIZE)
    dh = np.maximum(detections[:, 3] - detections[:, 1], _MIN_SIZE)
    ratio = dh[None, :] / th[:, None]
    return (ratio < MAX_HEIGHT_RATIO) & (ratio > 1 / MAX_HEIGHT_RATIO)


def _assign(
    iou: npt.NDArray[np.float32], allowed: npt.NDArray[np.bool_], threshold: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Optimal one-to-one pairs (rows, cols) maximising total IoU over the allowed pairs.

    Pairs that are not allowed or below ``threshold`` score 0 and are dropped after the
    assignment, which is the same as solving with "leave unmatched" as an option: a weak pair can
    never displace a strong one.
    """
    score = np.where(allowed & (iou >= threshold), iou, np.float32(0.0))
    return max_weight_matching(score)


class ByteTracker:
    """Tracks detections of one camera across frames; see the module docstring.

    Not thread-safe; one instance per camera. Per-track state lives in column arrays (struct of
    arrays) so prediction, the Kalman update and bookkeeping are vectorised over tracks, and it is
    dropped together with the track.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._next_id = 1
        self._clear()

    def _clear(self) -> None:
        self._time: float | None = None
        self._mean = np.empty((0, 8), np.float64)  # cx, cy, w, h and their rates per second
        self._cov = np.empty((0, 8, 8), np.float64)
        self._ids = np.empty(0, np.int64)
        self._category = np.empty(0, np.int8)
        self._votes = np.empty((0, len(COUNTED_CLASS_IDS)), np.float64)  # summed confidence
        self._hits = np.empty(0, np.int64)
        self._last_seen = np.empty(0, np.float64)  # timestamp of the last matched detection
        self._confirmed = np.empty(0, bool)
        self._matched = np.empty(0, bool)  # matched in the latest frame

    def reset(self) -> None:
        """Drop every track and the clock (e.g. across a stream gap); ids keep increasing."""
        self._clear()

    @property
    def track_count(self) -> int:
        """Tracks held internally, tentative and coasting ones included."""
        return len(self._ids)

    @property
    def settled(self) -> bool:
        """No tentative track waits for its confirming detection in the next frame."""
        return bool(self._confirmed.all())

    def predicted(
        self, timestamp: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Confirmed tracks' boxes (xyxy) carried to ``timestamp`` and their speeds in pixels
        per second, without changing any state: where the detection schedule looks."""
        rows = np.flatnonzero(self._confirmed)
        dt = max(timestamp - self._time, 0.0) if self._time is not None else 0.0
        mean = self._mean[rows]
        box = _to_xyxy(mean[:, :4] + mean[:, 4:] * dt)
        return box, np.hypot(mean[:, 4], mean[:, 5])

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Advance to ``timestamp`` (seconds, non-decreasing) and associate ``detections``.

        Returns the confirmed tracks matched in this frame, with this frame's detection boxes.
        A timestamp that does not advance the clock (repeated, going back, NaN) is a zero step.
        """
        cfg = self.config
        now, dt = self._advance(timestamp)
        self._keep(now - self._last_seen <= cfg.lost_seconds)
        self._predict(dt)

        det = self._clean(detections)
        xyxy = det.xyxy
        conf = det.confidence
        category = det.category_index
        column = np.searchsorted(COUNTED_CLASS_IDS, det.class_id)
        high = conf >= cfg.high_confidence

        n_tracks = len(self._ids)
        matched = np.full(n_tracks, -1, np.intp)  # detection index per track, -1 if none
        predicted = _to_xyxy(self._mean[:, :4])

        # Stage 1: confident detections against every track, tentative and coasting included.
        hi = np.flatnonzero(high)
        if n_tracks and len(hi):
            iou = box_iou(predicted, xyxy[hi])
            allowed = (self._category[:, None] == category[hi]) & _alike(predicted, xyxy[hi])
            rows, cols = _assign(iou, allowed, cfg.match_iou)
            matched[rows] = hi[cols]

        # Stage 2: the rest against confirmed tracks matched in the previous frame. A coasting
        # track is not revived by a weak detection, nor is a tentative one confirmed by one.
        pool = np.flatnonzero((matched < 0) & self._matched & self._confirmed)
        lo = np.flatnonzero(~high)
        if len(pool) and len(lo):
            iou = box_iou(predicted[pool], xyxy[lo])
            allowed = (self._category[pool, None] == category[lo]) & _alike(
                predicted[pool], xyxy[lo]
            )
            rows, cols = _assign(iou, allowed, cfg.low_match_iou)
            matched[pool[rows]] = lo[cols]

        # Stage 3: confident leftovers against every leftover track, by predicted position.
        pool = np.flatnonzero(matched < 0)
        rest = hi[~np.isin(hi, matched)]
        if cfg.motion_gate > 0 and len(pool) and len(rest):
            score = self._motion_score(pool, _to_cxcywh(xyxy[rest]))
            score[self._category[pool, None] != category[rest]] = 0.0
            rows, cols = max_weight_matching(score)
            matched[pool[rows]] = rest[cols]

        hit = np.flatnonzero(matched >= 0)
        hit_det = matched[hit]
        self._correct(hit, _to_cxcywh(xyxy[hit_det]))
        self._hits[hit] += 1
        self._last_seen[hit] = now
        self._votes[hit, column[hit_det]] += conf[hit_det]
        self._matched = matched >= 0
        self._confirmed |= self._hits >= cfg.min_hits

        out_tracks = np.flatnonzero(self._matched & self._confirmed)
        out_dets = matched[out_tracks]
        out_boxes = _to_xyxy(self._mean[out_tracks, :4]) if cfg.smooth_boxes else xyxy[out_dets]
        out_ids = self._ids[out_tracks]
        out_cls = COUNTED_CLASS_IDS[np.argmax(self._votes[out_tracks], axis=1)]

        # Tentative tracks must be matched in every frame until confirmed.
        self._keep(self._matched | self._confirmed)

        born = self._births(xyxy, conf, category, hit_det)
        if len(born):
            self._start(born, xyxy, conf, category, column, now)
            if cfg.min_hits <= 1:
                out_dets = np.concatenate([out_dets, born])
                out_boxes = np.concatenate([out_boxes, xyxy[born]])
                out_ids = np.concatenate([out_ids, self._ids[-len(born) :]])
                out_cls = np.concatenate([out_cls, det.class_id[born]])

        if len(out_ids) == 0:
            return Tracks.empty()
        return Tracks(
            np.ascontiguousarray(out_boxes, dtype=np.float32),
            out_ids.astype(np.int64),
            out_cls.astype(np.int16),
            np.ascontiguousarray(conf[out_dets], dtype=np.float32),
        )

    # -- steps ------------------------------------------------------------------------------

    def _advance(self, timestamp: float) -> tuple[float, float]:
        """(now, dt): the tracker clock never goes backwards, so bad timestamps give dt 0."""
        t = float(timestamp)
        if self._time is None:
            self._time = t if np.isfinite(t) else 0.0
            return self._time, 0.0
        if not np.isfinite(t) or t <= self._time:
            return self._time, 0.0
        dt = t - self._time
        self._time = t
        return t, dt

    def _clean(self, detections: Detections) -> Detections:
        """Only finite, non-degenerate boxes of counted classes above ``low_confidence``."""
        xyxy = detections.xyxy
        conf = detections.confidence
        with np.errstate(invalid="ignore"):
            keep = (
                np.isfinite(xyxy).all(axis=1)
                & (xyxy[:, 2] > xyxy[:, 0])
                & (xyxy[:, 3] > xyxy[:, 1])
                & np.isfinite(conf)
                & (conf >= self.config.low_confidence)
                & np.isin(detections.class_id, COUNTED_CLASS_IDS)
            )
        return detections if keep.all() else detections[keep]

    def _keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Drop the tracks where ``mask`` is False, all their state with them."""
        if mask.all():
            return
        self._mean = self._mean[mask]
        self._cov = self._cov[mask]
        self._ids = self._ids[mask]
        self._category = self._category[mask]
        self._votes = self._votes[mask]
        self._hits = self._hits[mask]
        self._last_seen = self._last_seen[mask]
        self._confirmed = self._confirmed[mask]
        self._matched = self._matched[mask]

    def _predict(self, dt: float) -> None:
        """Constant-velocity step of ``dt`` seconds for every track; process noise grows with dt."""
        if dt <= 0.0 or len(self._ids) == 0:
            return
        size = _size4(self._mean[:, :4])
        q_pos = (np.asarray(_POSITION_RATE_STD) * size) ** 2 * dt
        q_vel = (np.asarray(_VELOCITY_RATE_STD) * size) ** 2 * dt
        transition = np.eye(8)
        transition[:4, 4:] = np.eye(4) * dt
        self._mean = self._mean @ transition.T
        self._mean[:, 2:4] = np.maximum(self._mean[:, 2:4], _MIN_SIZE)
        cov = transition @ self._cov @ transition.T
        diag = np.arange(8)
        cov[:, diag, diag] += np.concatenate([q_pos, q_vel], axis=1)
        self._cov = cov

    def _motion_score(
        self, rows: npt.NDArray[np.intp], centres: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Association weights (tracks ``rows`` x detections) from the squared Mahalanobis
        distance of the centres under each track's predicted covariance: positive inside the
        gate, closer is higher, 0 outside it or for a height ratio beyond 1.5."""
        mean = self._mean[rows]
        r = (_MEASUREMENT_STD * _size4(mean[:, :4])[:, :2]) ** 2
        s = self._cov[rows][:, :2, :2].copy()
        s[:, 0, 0] += r[:, 0]
        s[:, 1, 1] += r[:, 1]
        inv = np.linalg.inv(s)  # (k, 2, 2)
        d = centres[None, :, :2] - mean[:, None, :2]  # (k, n, 2)
        d2 = np.einsum("kni,kij,knj->kn", d, inv, d)
        ratio = centres[None, :, 3] / np.maximum(mean[:, None, 3], _MIN_SIZE)
        ok = (d2 < self.config.motion_gate) & (ratio < MAX_HEIGHT_RATIO)
        ok &= ratio > 1 / MAX_HEIGHT_RATIO
        return np.where(ok, 1.0 - d2 / self.config.motion_gate, 0.0)

    def _correct(self, rows: npt.NDArray[np.intp], z: npt.NDArray[np.float64]) -> None:
        """Kalman update of tracks ``rows`` with measured boxes ``z`` (k, 4) cx, cy, w, h."""
        if len(rows) == 0:
            return
        mean = self._mean[rows]
        cov = self._cov[rows]
        r = (_MEASUREMENT_STD * _size4(mean[:, :4])) ** 2
        hp = cov[:, :4, :]  # H P, (k, 4, 8)
        s = hp[:, :, :4].copy()  # H P H^T + R, (k, 4, 4)
        diag = np.arange(4)
        s[:, diag, diag] += r
        gain = np.linalg.solve(s, hp).transpose(0, 2, 1)  # P H^T S^-1, (k, 8, 4); S symmetric
        innovation = z - mean[:, :4]
        mean = mean + np.einsum("kij,kj->ki", gain, innovation)
        mean[:, 2:4] = np.maximum(mean[:, 2:4], _MIN_SIZE)
        cov = cov - gain @ hp
        self._mean[rows] = mean
        self._cov[rows] = 0.5 * (cov + cov.transpose(0, 2, 1))

    def _births(
        self,
        xyxy: npt.NDArray[np.float32],
        conf: npt.NDArray[np.float32],
        category: npt.NDArray[np.int8],
        used: npt.NDArray[np.intp],
    ) -> npt.NDArray[np.intp]:
        """Unmatched confident detections that start tracks, most confident first, skipping
        duplicates (same category, IoU above ``duplicate_iou``) of matched or started ones."""
        free = np.ones(len(conf), bool)
        free[used] = False
        candidates = np.flatnonzero(free & (conf >= self.config.new_track_confidence))
        if len(candidates) == 0:
            return candidates
        candidates = candidates[np.argsort(-conf[candidates], kind="stable")]
        taken = list(used)
        if not taken and len(candidates) == 1:
            return candidates
        iou = box_iou(xyxy[candidates], xyxy)
        same = category[candidates][:, None] == category[None, :]
        duplicate = same & (iou > self.config.duplicate_iou)
        born: list[int] = []
        for i, d in enumerate(candidates):
            if not duplicate[i, taken].any():
                born.append(int(d))
                taken.append(int(d))
        return np.asarray(born, np.intp)

    def _start(
        self,
        born: npt.NDArray[np.intp],
        xyxy: npt.NDArray[np.float32],
        conf: npt.NDArray[np.float32],
        category: npt.NDArray[np.int8],
        column: npt.NDArray[np.intp],
        now: float,
    ) -> None:
        """Append one tentative track per detection in ``born``, with fresh ids."""
        k = len(born)
        box = _to_cxcywh(xyxy[born])
        size = _size4(box)
        mean = np.concatenate([box, np.zeros((k, 4))], axis=1)
        std = np.concatenate(
            [_INITIAL_POSITION_STD * size, np.asarray(_INITIAL_VELOCITY_STD) * size], axis=1
        )
        cov = np.zeros((k, 8, 8))
        diag = np.arange(8)
        cov[:, diag, diag] = std**2
        votes = np.zeros((k, len(COUNTED_CLASS_IDS)))
        votes[np.arange(k), column[born]] = conf[born]
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k

        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._ids = np.concatenate([self._ids, ids])
        self._category = np.concatenate([self._category, category[born]])
        self._votes = np.concatenate([self._votes, votes])
        self._hits = np.concatenate([self._hits, np.ones(k, np.int64)])
        self._last_seen = np.concatenate([self._last_seen, np.full(k, now)])
        self._confirmed = np.concatenate([self._confirmed, np.full(k, self.config.min_hits <= 1)])
        self._matched = np.concatenate([self._matched, np.ones(k, bool)])
