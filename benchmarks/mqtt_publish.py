"""MQTT publishing on loopback against a real Mosquitto: latency and spool throughput.

- latency: a window closes (``EgressGate.publish``) -> a subscriber on loopback receives the
  report; reports sent one at a time, p50/p99 in milliseconds;
- spool write: reports/s stored with ``put`` (SQLite WAL, synchronous FULL: each one on disk);
- spool drain: reports/s from a full spool to acknowledged by the broker (QoS 1 PUBACK).

    .venv/bin/python -m benchmarks.mqtt_publish --reports 300 --spooled 2000   (from the repo root)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.config import MqttConfig
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.publish.mqtt import MqttPublisher
from edge.publish.spool import Spool
from tests.integration.test_mqtt import NOTICE, POLICY, windows
from tests.support.broker import start_broker, subscribe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=300, help="reports timed for latency")
    parser.add_argument("--spooled", type=int, default=2000, help="reports for the spool figures")
    args = parser.parse_args()
    today = dt.date(2026, 11, 22)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = start_broker(work / "broker")
        try:
            config = MqttConfig(enabled=True, host=broker.host, port=broker.port, site="bench")
            subscriber = subscribe(broker, ["edge/bench/cam/counts"])

            spool = Spool(work / "spool.sqlite", max_reports=10**6)
            publisher = MqttPublisher(config, spool, ["cam"], NOTICE)
            audit = AuditLog(work / "audit.jsonl")
            gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
            publisher.start()
            while not publisher.connected:
                time.sleep(0.01)
            latencies = []
            for n, report in enumerate(windows(0, args.reports), start=1):
                start = time.perf_counter()
                gate.publish(report, today)
                subscriber.wait_for(lambda m, n=n: len(m) >= n, 10)  # woken on arrival
                latencies.append((time.perf_counter() - start) * 1e3)
            publisher.stop(10)

            # Spool throughput: write with no broker attached, then drain through the broker.
            full = Spool(work / "full.sqlite", max_reports=10**6)
            payloads = [gate.payload(r) for r in windows(10_000, args.spooled)]
            t0 = time.perf_counter()
            for p in payloads:
                full.put(
                    "edge/bench/cam/counts", json.dumps(p).encode(), p["report_id"], p["start"]
                )
            write_s = time.perf_counter() - t0
            drainer = MqttPublisher(config, full, ["cam"], NOTICE)
            t0 = time.perf_counter()
            drainer.start()
            drained = drainer.flush(120)
            drain_s = time.perf_counter() - t0
            drainer.stop(5)
            subscriber.close()
        finally:
            broker.stop()
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"latency window close -> subscriber, {len(latencies)} reports on loopback:")
    print(f"  p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(latencies):.2f} ms")
    print(
        f"spool write: {args.spooled / write_s:.0f} reports/s ({args.spooled} reports, fsync each)"
    )
    print(
        f"spool drain: {args.spooled / drain_s:.0f} reports/s to PUBACK "
        f"({'all delivered' if drained else 'NOT all delivered'}, connect time included)"
    )


if __name__ == "__main__":
    main()
