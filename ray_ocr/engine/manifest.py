"""The run manifest: what each input became, kept in the output folder for reruns.

An append-only JSON-lines file (``<output_dir>/ray_ocr_manifest.jsonl``), one record
per finished input. The last record of a key wins. A rerun skips an input whose last
record is "done" and whose every listed output file still exists. A driver killed
mid-append leaves at most one torn last line, which is ignored.

A long PDF run in page-range parts also gets a record per part done, in
``ray_ocr_parts.jsonl`` beside it (so the manifest keeps one record per input): a rerun
of a PDF not finished runs only the pages no part record (with its outputs still
there) covers. The input's own record stays what says it is finished.

Each record carries the id of the settings that made it (pipeline, parameters), and
``ray_ocr_run.jsonl`` has a line per run with its settings and their id: a rerun with
another pipeline or other parameters would skip results it did not make, so the driver
refuses it unless told to overwrite or to resume anyway.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any, Callable, Iterator, NamedTuple

from ray_ocr.records import Failure, FileResult, WorkerInfo

MANIFEST_NAME = "ray_ocr_manifest.jsonl"
FAILURES_NAME = "failures.jsonl"
RUNS_NAME = "ray_ocr_run.jsonl"
PARTS_NAME = "ray_ocr_parts.jsonl"

_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(x, ensure_ascii=False), built once
_STR = json.encoder.encode_basestring  # a str as that writes it (the C function itself)


def read_jsonl(path: str) -> Iterator[dict]:
    """The records of a JSON-lines file, one at a time (a manifest of millions of inputs
    is never held whole)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a torn last line from a killed driver


class RunManifest:
    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, MANIFEST_NAME)
        self.failures_path = os.path.join(output_dir, FAILURES_NAME)
        self.runs_path = os.path.join(output_dir, RUNS_NAME)
        self.parts_path = os.path.join(output_dir, PARTS_NAME)
        self.settings_id: str | None = None  # of this run, once started
        self.failures_recorded = 0  # by this run
        self._worker_json: dict = {}  # (actor, node) -> the record's fields naming them
        self._handle = self._parts_handle = None

    def settings_changes(self, settings: dict, finished_ids: set) -> list[str]:
        """How `settings` differ from those that made finished results (``finished_ids``:
        the ids their records carry): ["name: old -> new", ...]; [] when they are the same."""
        ours = settings_id(settings)
        others = {i for i in finished_ids if i is not None and i != ours}  # None: before ids existed
        if not others:
            return []
        known = {run.get("settings"): run for run in read_jsonl(self.runs_path)}
        now = json.loads(json.dumps(settings, sort_keys=True, default=str))
        changes: list[str] = []
        for other in sorted(others):
            earlier = known.get(other)
            if earlier is None:
                changes.append(f"settings {other} (not in {RUNS_NAME})")
                continue
            changes.extend(_differences(earlier, now))
        return list(dict.fromkeys(changes))

    def start_run(self, settings: dict) -> None:
        """Record this run's settings (a line in ray_ocr_run.jsonl) and tag every record
        it writes with their id, so a rerun knows what made each finished result."""
        import time

        self.settings_id = settings_id(settings)
        self._worker_json.clear()  # they name the settings
        os.makedirs(self.output_dir, exist_ok=True)
        line = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": self.settings_id, **settings}
        with open(self.runs_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")

    def _latest(self, value: Callable[[dict], Any]) -> dict[str, Any]:
        """{key: value(its last record)}, streamed, without the keys whose value is None."""
        latest: dict[str, Any] = {}
        for record in read_jsonl(self.path):
            if "key" in record:
                latest[record["key"]] = value(record)
        return {key: v for key, v in latest.items() if v is not None}

    def finished_outputs(self, failed_too: bool = False) -> tuple[dict[str, list[str]], set, dict[str, list[DonePart]]]:
        """What a rerun may skip: ({key: its outputs} for inputs whose latest record is
        done, the settings ids that made them and the parts below, {key: its parts done}
        for PDFs not finished). `failed_too` (--skip_failed): inputs whose latest record
        failed are in the first too, with no outputs (and no settings: no result of theirs
        is kept)."""
        latest = self._latest(lambda r: (r["outputs"], r.get("settings"))
                              if r.get("status") == "done" and r.get("outputs") else
                              ([], None) if failed_too and r.get("status") == "failed" else None)
        parts: dict[str, list[DonePart]] = {}
        for record in read_jsonl(self.parts_path):
            if record.get("key") not in latest and "pages" in record:
                parts.setdefault(record["key"], []).append(DonePart(
                    tuple(record["pages"]), record["outputs"], record.get("settings"), record.get("page_count")))
        ids = {i for outputs, i in latest.values() if outputs}
        ids |= {part.settings for done in parts.values() for part in done}
        return {key: outputs for key, (outputs, _) in latest.items()}, ids, parts

    def __enter__(self) -> "RunManifest":
        os.makedirs(self.output_dir, exist_ok=True)
        # A batch's records (~250 bytes each) reach the file in one write at sync(): a
        # driver killed mid-batch leaves whole lines, or at worst one torn last line.
        self._handle = _open_for_appending(self.path, buffering=1 << 20)
        return self

    def __exit__(self, *exc) -> None:
        self.sync()
        self._handle.close()
        self._handle = None
        if self._parts_handle is not None:
            self._parts_handle.close()
            self._parts_handle = None

    def record(self, result: FileResult, outputs: list[str], attempts: int, worker: WorkerInfo | None) -> None:
        """Append the record of one input, right after its outputs are in place.

        Flushed and fsync'ed by ``sync``, once per batch: a driver killed in between
        loses (some of) the records of that batch, whose inputs a rerun does again
        (their outputs are rewritten whole), never a record of a missing output.
        """
        # Formatted field by field (each string by the JSON encoder): the same line as
        # json.dumps of the record's dict, in a third of the driver's time per input.
        pages = result.page_count if result.page_count is not None else len(result.pages)
        line = (f'{{"key": {_STR(result.key)}, "status": "{"done" if result.failure is None else "failed"}", '
                f'"outputs": [{", ".join(map(_STR, outputs))}], "pages": {pages}, "attempts": {attempts}, '
                f'"seconds": {round(result.seconds, 4)!r}, {self._worker_fields(worker)}')
        extra: dict[str, Any] = {}
        if result.warnings:
            extra["warnings"] = list(result.warnings)
        if result.failure is not None:
            self.failures_recorded += 1
            extra["failure"] = {**asdict(result.failure), "attempts": attempts}
        self._handle.write(line + (", " + _ENCODE(extra)[1:] if extra else "}") + "\n")

    def record_part(self, result: FileResult, outputs: list[str]) -> None:
        """Append the record of one part of a split PDF that is done, right after its
        outputs are in place (synced with the batch's records)."""
        if self._parts_handle is None:  # opened at the first part: runs without long PDFs make no file
            self._parts_handle = _open_for_appending(self.parts_path)
        line = {"key": result.key, "pages": list(result.page_range), "page_count": result.page_count,
                "outputs": outputs, "settings": self.settings_id}
        self._parts_handle.write(_ENCODE(line) + "\n")

    def _worker_fields(self, worker: WorkerInfo | None) -> str:
        """'"actor": ..., "node": ..., "settings": ...' (the same for every input an actor ran)."""
        key = (worker.actor_name, worker.node_id) if worker else None
        fields = self._worker_json.get(key)
        if fields is None:
            actor, node = (_STR(part) for part in key) if key else ("null", "null")
            fields = f'"actor": {actor}, "node": {node}, "settings": {_ENCODE(self.settings_id)}'
            self._worker_json[key] = fields
        return fields

    def sync(self) -> None:
        for handle in (self._handle, self._parts_handle):
            if handle is not None:
                handle.flush()
                os.fsync(handle.fileno())

    def write_failures(self, every_input_recorded: bool = False) -> list[dict]:
        """Rewrite failures.jsonl from the manifest: the inputs whose latest record failed.
        Not needed (and the manifest not read back) when this run recorded every input
        it was to do, none failed, and no earlier run left a failures.jsonl."""
        from ray_ocr.io.outputs import atomic_write_text

        if every_input_recorded and not self.failures_recorded and not os.path.exists(self.failures_path):
            return []
        failed = list(self._latest(lambda r: r.get("failure") if r.get("status") == "failed" else None).values())
        text = "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failed)
        if failed or os.path.exists(self.failures_path):
            atomic_write_text(self.failures_path, text)
        return failed


class DonePart(NamedTuple):
    """A part of a split PDF an earlier run finished: its pages, their outputs."""

    pages: tuple[int, ...]
    outputs: list[str]
    settings: str | None
    page_count: int | None  # of the document: a part of another file under the same name does not count


def _open_for_appending(path: str, buffering: int = -1):
    """A JSON-lines file opened to append to; a killed driver's torn last line is ended
    first, so the next record starts on a line of its own."""
    torn = _ends_mid_line(path)
    handle = open(path, "a", encoding="utf-8", buffering=buffering)
    if torn:
        handle.write("\n")
    return handle


def _ends_mid_line(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:  # no file, or an empty one
        return False


def _differences(earlier: dict, now: dict, prefix: str = "") -> list[str]:
    """["pipeline_params.text_det_thresh: 0.3 -> 0.4", ...]: what changed, key by key
    (into mappings: a long parameter list shows only what differs)."""
    changes = []
    for name in sorted(set(earlier) | set(now)):
        if name in ("started", "settings") or earlier.get(name) == now.get(name):
            continue
        old, new = earlier.get(name), now.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(_differences(old, new, f"{prefix}{name}."))
        else:
            changes.append(f"{prefix}{name}: {old!r} -> {new!r}")
    return changes


def settings_id(settings: dict) -> str:
    """A short id for what makes results what they are (pipeline, parameters)."""
    import hashlib

    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def failure_for(key: str, stage: str, exc: BaseException, attempts: int = 1) -> Failure:
    text = str(exc).strip()
    message = text.splitlines()[0] if text else repr(exc)
    return Failure(key=key, stage=stage, error_type=type(exc).__name__, message=message, attempts=attempts)
