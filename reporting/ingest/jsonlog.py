"""`api_logs` from JSON-lines access logs (`format = "json_log"`): nginx's
`log_format ... escape=json`, ingress-nginx, Caddy, Traefik; one JSON object a line.

`fields` says which key holds what (`fields = { time = "ts", status = "status",
path = "request.uri" }`; dots reach into objects, as Caddy nests `request`). A time is an
ISO 8601 text, nginx's `$time_local`, or an epoch number in seconds, milliseconds,
microseconds or nanoseconds (told apart by size, as loggers write all four);
`duration_unit` says the duration's unit (Caddy: s, Traefik's `Duration`: ns). A line
that is not a JSON object is a rejected row with its text.
"""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ..core.sourceconfig import SourceConfig
from ..core.contracts import Spec
from ..core.periods import Window
from .files import Inflation
from .logfiles import Parsed, log_files, read_log_files
from .read import Read
from .validate import epoch_utc

UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}
REASON_JSON = "not a JSON object"
REASON_REQUEST = "unparseable request line"


def _getter(key: str):
    """A function reading `key` ("request.uri": the `uri` of the `request` object)."""
    parts = key.split(".")

    def get(obj):
        if key in obj:            # a flat key that holds a dot ("request.uri" itself)
            return scalar(obj[key])
        for p in parts:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(p)
        return scalar(obj)
    return get


def scalar(value):
    """A field's value as one value: a list of one its element (Caddy logs headers as
    lists: `"Host": ["shop.example"]`), any other list or object none (its row is then
    rejected for the field it lacks, as when the key is missing)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return None if isinstance(value, (list, dict)) else value


def parser(fields: dict[str, str], unit: str):
    """A function that parses a chunk of JSON lines with the field map."""
    getters = {name: _getter(key) for name, key in fields.items()}

    def parse(chunk) -> Parsed:
        lines = chunk.to_pylist()
        values: dict[str, list] = {name: [] for name in getters}
        reasons = np.full(len(lines), "", dtype=object)
        pos = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                reasons[i] = REASON_JSON
                continue
            pos.append(i)
            for name, get in getters.items():
                values[name].append(get(obj))
        pos_np = np.asarray(pos, dtype=np.int64)
        out = _fields(values, unit)
        bad = out.pop("_bad").to_numpy(dtype=bool)
        reasons[pos_np[bad]] = REASON_REQUEST
        return Parsed(out.loc[~bad].reset_index(drop=True), pos_np[~bad], reasons)
    return parse


def _fields(values: dict[str, list], unit: str) -> pd.DataFrame:
    """time, method, target, status, ms and host from the raw values; `_bad` marks rows
    whose request line does not split into a method and a path."""
    n = len(next(iter(values.values()))) if values else 0
    out = pd.DataFrame({"time": times(pd.Series(values.get("time", [None] * n), dtype=object))})
    bad = np.zeros(n, bool)
    if "request" in values and "path" not in values:
        req = pd.Series(values["request"], dtype=object).astype("str").str.extract(
            r"^(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/[\d.]+)?$")
        out["method"], out["target"] = req["method"], req["target"]
        bad = req["target"].isna().to_numpy()
    else:
        out["target"] = pd.Series(values["path"], dtype=object)
        bad = out["target"].isna().to_numpy()
        out["method"] = pd.Series(values.get("method", [None] * n), dtype=object)
    out["status"] = pd.Series(values["status"], dtype=object).astype("str").where(
        pd.Series(values["status"], dtype=object).notna())
    if "duration" in values:
        out["ms"] = pd.to_numeric(pd.Series(values["duration"], dtype=object),
                                  errors="coerce") * UNIT_MS[unit]
    if "host" in values:
        out["host"] = pd.Series(values["host"], dtype=object)
    out["_bad"] = bad
    return out


def times(raw: pd.Series) -> pd.Series:
    """UTC times from ISO 8601 texts, `$time_local` texts or epoch numbers, their unit
    told by their size (`validate.epoch_utc`: zap's and Vector's encoders write all four)."""
    num = pd.to_numeric(raw, errors="coerce")
    out = epoch_utc(num)
    text = raw.where(num.isna()).dropna().astype("str")
    if len(text):
        iso = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        local = pd.to_datetime(text, format="%d/%b/%Y:%H:%M:%S %z", utc=True, errors="coerce")
        out.loc[text.index] = iso.fillna(local)
    return out.astype("datetime64[ns, UTC]")


def read_logs(src: SourceConfig, spec: Spec, window: Window, tz: ZoneInfo,
              bound: Inflation | None = None) -> Read:
    """Every JSON log file the path names (plain or .gz), in the window."""
    files, skipped = log_files(src, window)
    return read_log_files(src, window, files, skipped,
                          lambda _: parser(src.fields, src.duration_unit),
                          f"{src.path} (JSON lines)", bound)
