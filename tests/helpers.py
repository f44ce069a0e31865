"""Helpers several test modules share: inputs made on the spot, a run's manifest, the
actors a run would start, pyproject.toml's pins and the cluster configs' setup commands.
Test modules import shared code from here (or tests/conftest.py, tests/pdfs.py,
tests/reportpage.py, tests/textmatch.py), never from each other.
"""

from __future__ import annotations

import json
import socket
import struct
import zlib
from pathlib import Path

from tests.conftest import STANDIN


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for a test's own server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_images(folder: Path, count: int, width: int = 32) -> Path:
    """`count` small flat PNGs ``img_000.png``... (24 px high, `width` wide) in `folder`."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), np.full((24, width, 3), i % 255, np.uint8))
    return folder


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid, all-black 1-bit PNG of width x height pixels, a few kB on disk, written in
    a fraction of a second (Pillow takes seconds to build one this size)."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte "none", then the packed bits
    pixels = zlib.compressobj(9)
    idat = b"".join(pixels.compress(row) for _ in range(height)) + pixels.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def manifest_records(out: Path) -> list[dict]:
    """The lines of a run's ``ray_ocr_manifest.jsonl`` in `out`, in order."""
    lines = (Path(out) / "ray_ocr_manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def start_and_census(ray, device: str, k: int, **plan_kwargs) -> list:
    """Start the stand-in actors a run would start on the connected Ray, wait until each
    is up, kill them, and return their WorkerInfo."""
    from ray_ocr.config import DeviceRequest
    from ray_ocr.engine.actors import start_actors
    from ray_ocr.engine.cluster import describe_cluster
    from ray_ocr.engine.placement import plan_actors
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline

    slots = plan_actors("Standin", DeviceRequest.parse(device), describe_cluster(embedded=False), k,
                        **plan_kwargs)
    actors = start_actors(slots, RunnerSpec(pipeline=resolve_pipeline(STANDIN)))
    try:
        infos = ray.get([a.ready.remote() for a in actors.values()], timeout=120)
    finally:
        for actor in actors.values():
            ray.kill(actor)
    assert all(error is None for _, error in infos)
    return [worker for worker, _ in infos]


def project_extra(name: str) -> list[str]:
    """The requirements of one optional-dependencies extra in pyproject.toml."""
    import tomllib

    from tests.conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["optional-dependencies"][name]


def pinned_version(requirements: list[str], dist: str) -> str:
    """The ``==`` version `requirements` pin `dist` to (fails if it is not pinned)."""
    pins = [r.split(";")[0].split("==", 1)[1].strip() for r in requirements
            if r.split(";")[0].split("==")[0].strip().lower() == dist]
    assert pins, f"{dist} is not pinned with == in {requirements}"
    return pins[0]


def command_index(commands: list[str], needle: str) -> int:
    """Index of the first of a cluster config's setup commands containing `needle`."""
    hits = [i for i, cmd in enumerate(commands) if needle in cmd]
    assert hits, f"no setup command contains {needle!r}: {commands}"
    return hits[0]


RAY_START_TIMEOUTS = ("timed out during startup", "Timed out waiting for file")  # Ray's own 30 s waits


def start_ray(start, attempts: int = 2):
    """`start()` (a ray.init or a ray.cluster_utils.Cluster), once more if one of Ray's
    processes did not come up within Ray's own wait. Late in a full run, in a pytest
    process that many in-process tests have filled with threads, a freshly spawned GCS
    or raylet sometimes never starts (3 of 5 full runs on 2026-12-01, always preceded by
    gRPC's "skipping fork() handlers", and by Serve run in-process: conftest now runs
    those modules last); any other error is raised at once."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            return start()
        except Exception as exc:  # noqa: BLE001 - Ray raises Exception/RuntimeError for these
            if attempt == attempts or not any(text in str(exc) for text in RAY_START_TIMEOUTS):
                raise
            ray.shutdown()
