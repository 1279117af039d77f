"""``edge dashboard``: the collector, the hourly retention pass and the web server together."""

from __future__ import annotations

import logging
import threading

import uvicorn

from edge.config import Settings
from edge.dashboard.api import create_app
from edge.dashboard.ingest import Collector
from edge.dashboard.store import Store, StoreError, migrate, open_engine

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0


def serve(settings: Settings, collect: bool = True) -> None:
    """Run until SIGINT/SIGTERM; ``collect=False`` serves what is stored without a broker."""
    config = settings.dashboard
    engine = open_engine(config.database.get_secret_value())
    migrate(engine)
    store = Store(engine, config.raw_retention_days)
    collector = Collector(settings.mqtt, config, store) if collect else None
    stop = threading.Event()

    def retention() -> None:
        while not stop.is_set():
            try:
                deleted = store.prune(config.hourly_retention_days)
                log.info("retention: deleted %s", deleted)
            except StoreError as err:
                log.error("%s", err)
            stop.wait(RETENTION_EVERY_S)

    app = create_app(config, engine, collector.counters if collector else None)
    pruner = threading.Thread(target=retention, name="retention", daemon=True)
    pruner.start()
    if collector is not None:
        collector.start()
    try:
        uvicorn.run(app, host=config.listen_host, port=config.listen_port, log_level="warning")
    finally:
        stop.set()
        if collector is not None:
            collector.stop()
        engine.dispose()
