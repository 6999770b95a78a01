"""Container images for the tests, built here: no registry is reachable.

An image is a root filesystem of one static busybox (Debian's ``busybox-static``) and its
applet links, plus a ``/marker`` file saying which image it is, ``podman import``ed under a
tag of its own. Without a runtime (or busybox) the tests skip, unless ``CI=true`` or
``RUNLEDGER_REQUIRE_CONTAINERS=1``: then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from executor.container import ContainerError, find_runtime

REQUIRE_CONTAINERS = os.environ.get("CI") == "true" or os.environ.get("RUNLEDGER_REQUIRE_CONTAINERS") == "1"
APPLETS = ["sh", "sleep", "cat", "echo", "dd", "ls", "env", "sha256sum", "tr", "true", "test"]


def _unavailable(reason: str) -> None:
    if REQUIRE_CONTAINERS:
        pytest.fail(f"a container runtime is required (CI or RUNLEDGER_REQUIRE_CONTAINERS=1): {reason}")
    pytest.skip(reason)


@dataclass
class Images:
    runtime: str
    workdir: Path
    busybox: Path
    tags: list[str] = field(default_factory=list)

    def build(self, marker: str, tag: str | None = None) -> tuple[str, str]:
        """A new image whose ``/marker`` holds ``marker``: (its tag, its image ID)."""
        tag = tag or f"localhost/rl-test-{uuid.uuid4().hex[:10]}:1"
        root = self.workdir / uuid.uuid4().hex
        (root / "bin").mkdir(parents=True)
        shutil.copy2(self.busybox, root / "bin" / "busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "marker").write_text(marker + "\n")
        archive = root.with_suffix(".tar")
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        self.podman("import", "--quiet", str(archive), tag)
        self.tags.append(tag)
        return tag, self.image_id(tag)

    def image_id(self, reference: str) -> str:
        return str(json.loads(self.podman("image", "inspect", reference))[0]["Id"]).removeprefix("sha256:")

    def digest(self, reference: str) -> str:
        return str(json.loads(self.podman("image", "inspect", reference))[0]["Digest"])

    def containers(self, run_id: str) -> list[str]:
        """Every container (running or not) the executor made for ``run_id``."""
        listed = self.podman("ps", "--all", "--format", "{{.Names}}")
        return [name for name in listed.split() if run_id in name]

    def podman(self, *args: str) -> str:
        done = subprocess.run([self.runtime, *args], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{self.runtime} {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    try:
        runtime = find_runtime(os.environ.get("RUNLEDGER_CONTAINER_RUNTIME"))
    except ContainerError as exc:
        _unavailable(str(exc))
    busybox = next((Path(p) for p in ("/bin/busybox", "/usr/bin/busybox") if Path(p).is_file()), None)
    if busybox is None:
        _unavailable("no static busybox to build a test image from (apt-get install busybox-static)")
    assert busybox is not None
    made = Images(runtime, tmp_path_factory.mktemp("images"), busybox)
    yield made
    for tag in made.tags:
        subprocess.run([runtime, "rmi", "--force", tag], capture_output=True, check=False, timeout=120)
