"""Screenshot the key cards for the README from Microsoft's Teams emulator, in headless Chromium.

    .venv/bin/python docs/screens/make.py            # writes docs/screens/*.png

Needs the npm packages (`npm ci`: the emulator) and Chromium at /usr/bin/chromium. The short quarter it drives is in
tests/e2e/screens.py, and so are the delegations (of which the README shows `DELEGATION_SHOTS`); every server listens
on 127.0.0.1 and is stopped when it ends.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.screens import shoot_a_quarter, shoot_delegations  # noqa: E402  (the project root is put on the path first)

DELEGATION_SHOTS = {"progress": "live", "evidence": "evidence", "question": "question"}
"""The delegation cards the README shows (shot: file name); the others are for the suite to look at."""


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    with tempfile.TemporaryDirectory(prefix="cos-screens-") as folder:
        for shot in asyncio.run(shoot_a_quarter(Path(folder) / "quarter", out)):
            print(f"{shot.path}: {shot.width:.0f} x {shot.height:.0f} px")
        for shot in asyncio.run(shoot_delegations(Path(folder) / "delegations", Path(folder) / "shots")):
            if shot.name in DELEGATION_SHOTS:
                path = shutil.copyfile(shot.path, out / f"{DELEGATION_SHOTS[shot.name]}.png")
                print(f"{path}: {shot.width:.0f} x {shot.height:.0f} px")


if __name__ == "__main__":
    main()
