"""Fuzzing the config and policy loaders (issue 16, item 6): whatever the bytes, only
``ConfigError`` or ``PolicyViolation`` comes out, and quickly.

``FUZZ_EXAMPLES`` sets the examples per test (the suite runs a few dozen; the closing note of
the issue reports a longer run: ``FUZZ_EXAMPLES=5000 pytest tests/unit/test_config_fuzz.py``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import Settings, load_settings
from edge.errors import ConfigError, PolicyViolation
from edge.legal.policy import Policy, load_policy
from tests.conftest import EXAMPLE, REPO

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
SLOWEST_S = 2.0  # CPU seconds per file (wall time stalls on a loaded runner); typically ms
POLICY_TEXT = (REPO / "policies" / "cnil-statistics.yaml").read_bytes()
EXAMPLE_TEXT = EXAMPLE.read_bytes()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces of YAML that reach the corners: anchors, tags, flow and block nesting, merge keys,
# odd scalars (NaN, huge, dates), BOMs and control characters, and the real keys.
TOKENS = [
    "{", "}", "[", "]", ",", ":", ": ", "- ", "? ", "\n", "  ", "    ", "#", "'", '"', "|", ">",
    "&a ", "*a", "&b ", "*b", "<<: ", "!!binary ", "!!set ", "!!omap ", "!!python/object ",
    "!!str ", "!!int ", "!!float ", "!!timestamp ", "!!null ", "!foo ", "%YAML 1.1\n", "---\n",
    "...\n", ".nan", ".inf", "-.inf", "1e308", "-1e400", "true", "false", "null", "~", "0x1F",
    "0o17", "1_000", "2026-13-45", "2026-01-01", "2026-02-30T25:61:00+99:00", "9" * 30, "0",
    "-1", "3.5", "abc", "\ufeff", "\x00", "\x07", "\t", "\r", "\u2028", "é", "\ud7ff",
    "cameras", "id", "source", "lines", "zones", "start", "end", "points", "name", "window",
    "seconds", "detector", "confidence", "mqtt", "port", "policy", "deployment", "recipients",
    "tracker", "motion", "audit", "surveillance", "face", "min_window_seconds", "disclosure",
    "small_counts", "rule", "allowed_categories", "valid_from", "retention",
]  # fmt: skip


def _keys(model: type[Any]) -> list[str]:
    return sorted(model.model_fields)


SETTINGS_KEYS = st.sampled_from([*_keys(Settings), "cameras", "x"])
POLICY_KEYS = st.sampled_from([*_keys(Policy), "x"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(),
)


def _trees(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(keys, st.text(max_size=8)), inner, max_size=4),
        ),
        max_leaves=20,
    )


def _mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with a few bytes replaced, inserted or deleted at random places."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            piece = draw(st.one_of(st.binary(max_size=8), st.sampled_from(TOKENS).map(str.encode)))
            cut = draw(st.integers(0, 8))
            data[at : at + cut] = piece
        return bytes(data)

    return mutate()


def _documents(base: bytes, keys: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda t: "".join(t).encode()),
        _trees(keys).map(lambda tree: yaml.safe_dump(tree, allow_unicode=True).encode()),
        st.dictionaries(keys, _trees(keys), max_size=6).map(
            lambda tree: yaml.safe_dump(tree, allow_unicode=True).encode()
        ),
        _mutated(base),
    )


def _only_our_errors(load: Callable[[Path], object], data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_bytes(data)
        started = time.process_time()
        try:
            load(path)
        except (ConfigError, PolicyViolation) as err:
            assert str(err).strip(), "an error says what is wrong"
        assert time.process_time() - started < SLOWEST_S


@FUZZ
@given(data=_documents(EXAMPLE_TEXT, SETTINGS_KEYS))
def test_load_settings_raises_only_config_errors(data: bytes) -> None:
    _only_our_errors(load_settings, data)


@FUZZ
@given(data=_documents(POLICY_TEXT, POLICY_KEYS))
def test_load_policy_raises_only_config_errors(data: bytes) -> None:
    _only_our_errors(load_policy, data)
