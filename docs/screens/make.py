"""Screenshot the key cards for the README from Microsoft's Teams emulator, in headless Chromium.

    .venv/bin/python docs/screens/make.py            # writes docs/screens/*.png

Needs the npm packages (`npm ci`: the emulator) and Chromium at /usr/bin/chromium. The short quarter it drives is in
tests/e2e/screens.py; both servers listen on 127.0.0.1 and are stopped when it ends.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.screens import shoot_a_quarter  # noqa: E402  (the project root is put on the path first)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    with tempfile.TemporaryDirectory(prefix="cos-screens-") as folder:
        for shot in asyncio.run(shoot_a_quarter(Path(folder), out)):
            print(f"{shot.path}: {shot.width:.0f} x {shot.height:.0f} px")


if __name__ == "__main__":
    main()
