"""Finding argv[0] inside an image's root filesystem: symlinks followed as if the root were
``/``, so no link leads out of the image (real files in a temporary directory)."""

from __future__ import annotations

import os
from pathlib import Path

from executor.container_image import resolve_in_root


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    tool = root / "bin" / "busybox"
    tool.write_bytes(b"#!tool\n")
    tool.chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "usr" / "bin" / "env").symlink_to("/bin/busybox")
    (root / "usr" / "bin" / "up").symlink_to("../../bin/sh")
    (root / "data.txt").write_text("not executable")
    return root


def test_relative_and_absolute_links_resolve_inside_the_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    assert resolve_in_root(root, "/bin/sh") == "/bin/busybox"
    assert resolve_in_root(root, "/usr/bin/env") == "/bin/busybox"
    assert resolve_in_root(root, "/usr/bin/up") == "/bin/busybox"


def test_a_link_pointing_outside_the_image_stays_inside_it(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    outside = tmp_path / "host-tool"
    outside.write_bytes(b"host")
    outside.chmod(0o755)
    (root / "bin" / "escape").symlink_to(f"/../../{outside.name}")
    (root / "bin" / "escape2").symlink_to(str(outside))
    assert resolve_in_root(root, "/bin/escape") is None
    assert resolve_in_root(root, "/bin/escape2") is None
    assert resolve_in_root(root, "/../" + outside.name) is None


def test_missing_non_executable_and_looping_paths_resolve_to_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    os.symlink("loop", root / "bin" / "loop")
    assert resolve_in_root(root, "/bin/nope") is None
    assert resolve_in_root(root, "/data.txt") is None
    assert resolve_in_root(root, "/bin") is None
    assert resolve_in_root(root, "/bin/loop") is None
