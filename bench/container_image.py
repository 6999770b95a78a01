"""A local image for the container benchmark: one static busybox, ``podman import``ed (no
registry is needed), removed afterwards."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def busybox_image(runtime: str) -> Iterator[str]:
    busybox = next((Path(p) for p in ("/bin/busybox", "/usr/bin/busybox") if Path(p).is_file()), None)
    if busybox is None:
        raise SystemExit("the container benchmark needs a static busybox (apt-get install busybox-static)")
    tag = f"localhost/rl-bench-{uuid.uuid4().hex[:8]}:1"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in ("sh", "true"):
            (root / "bin" / applet).symlink_to("busybox")
        archive = Path(scratch) / "root.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        subprocess.run([runtime, "import", "--quiet", str(archive), tag], check=True, capture_output=True)
    try:
        yield tag
    finally:
        subprocess.run([runtime, "rmi", "--force", tag], check=False, capture_output=True)
