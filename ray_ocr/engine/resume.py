"""Which inputs a run does: discovery folder by folder, output names per folder, and
the resume decision (skip what an earlier run finished; refuse when other settings
made it).

An input is finished when its latest manifest record is "done" and every output that
record lists still exists. Of a long PDF not finished, the parts done whose outputs
still exist are kept (``done_parts``): the reader runs only its other pages. Results made
by another pipeline or other parameters are not skipped silently: the run is refused
unless ``--resume_anyway`` (keep them) or ``--overwrite`` (redo everything).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from ray_ocr.engine.manifest import DonePart
from ray_ocr.errors import UsageError
from ray_ocr.io.outputs import BaseClaims, assign_output_bases

logger = logging.getLogger(__name__)


class InputPlan:
    def __init__(self, config, inputs, outputs, manifest, settings: dict):
        self.config = config
        self.inputs, self.outputs = inputs, outputs  # io/storage.py folders
        self.manifest = manifest
        self.settings = settings
        self.bases: dict[str, str] = {}  # input key -> output base, until recorded
        self.done_parts: dict[str, list[DonePart]] = {}  # a PDF to run -> its parts done earlier
        self._parts_on_record: dict[str, list[DonePart]] = {}
        self.files = 0  # inputs found so far
        self.skipped = 0
        self.skipped_failed = 0  # of those, inputs whose last try failed (--skip_failed)
        self.todo_total: int | None = None  # known once the last folder is listed
        self.on_total: Callable[[int], None] | None = None
        # An --input_list is grouped as listed, not by folder: a base (or a PDF's page
        # names) an earlier group took goes to a later input by its full file name.
        self.claims = BaseClaims() if getattr(config, "input_list", None) else None

    def keys(self) -> Iterator[str]:
        """The keys to run, lazily, folder by folder, skipping finished ones."""
        finished: dict[str, list[str]] = {}
        if not self.config.overwrite:
            finished, finished_ids, self._parts_on_record = self.manifest.finished_outputs(
                failed_too=self.config.skip_failed)
            self._check_settings(finished_ids)
        cfg = self.config
        if "markdown" in getattr(cfg, "save", ()):  # a document's .md is made from every page's piece
            self._parts_on_record = {}
        groups = self.inputs.groups(cfg.input_glob_pattern, exclude_dir=self.outputs.local_root,
                                    follow_symlinks=cfg.follow_symlinks)
        group, todo_before = next(groups, None), 0
        while group is not None:
            todo = self._todo(group, finished)
            group = next(groups, None)
            if group is None:
                self._total_known(todo_before + len(todo))
            todo_before += len(todo)
            yield from todo

    def _todo(self, group: list[str], finished: dict[str, list[str]]) -> list[str]:
        bases = assign_output_bases(group)
        if self.claims is not None:
            bases = {key: self.claims.settle(key, base) for key, base in bases.items()}
        self.bases.update(bases)
        self.files += len(group)
        candidates = {key: finished[key] for key in group if key in finished}
        parts = {key: self._parts_on_record[key] for key in group if key in self._parts_on_record}
        wanted = [*(rel for outs in candidates.values() for rel in outs),
                  *(rel for done in parts.values() for part in done for rel in part.outputs)]
        present = self.outputs.exists_all(wanted) if wanted else set()
        todo = []
        for key in group:
            outputs = candidates.get(key)  # [] for an input that failed (--skip_failed)
            if outputs is not None and all(rel in present for rel in outputs):
                self.skipped += 1
                self.skipped_failed += not outputs
                continue
            todo.append(key)
            kept = [part for part in parts.get(key, ()) if all(rel in present for rel in part.outputs)]
            if kept:
                self.done_parts[key] = kept
        return todo

    def _total_known(self, total: int) -> None:
        self.todo_total = total
        if self.on_total is not None:
            self.on_total(total)
        if self.skipped:
            failed = (f" ({self.skipped_failed} of them failed: --skip_failed; failures.jsonl lists them)"
                      if self.skipped_failed else "")
            logger.info("skipped %d input%s finished by an earlier run%s", self.skipped,
                        "" if self.skipped == 1 else "s", failed)

    def _check_settings(self, finished_ids: set) -> None:
        changes = self.manifest.settings_changes(self.settings, finished_ids)
        if not changes:
            return
        what = "; ".join(changes)
        if not self.config.resume_anyway:
            raise UsageError(
                f"--output_dir {self.config.output_dir}: its results were made with other settings ({what}) "
                "and a rerun would skip them as finished; use another output folder, --overwrite to redo "
                "every input, or --resume_anyway to keep them")
        logger.warning("resuming over results made with other settings (%s)", what)
