"""The NumPy example of docs/python.md runs as written (so the documentation cannot drift from the API)."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "python.md"


def test_numpy_first_call_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    numpy_block = next(b for b in blocks if "import numpy" in b)
    scope = {}
    exec(compile(numpy_block, f"{DOC}:numpy example", "exec"), scope)
    assert scope["out"].shape == (2, 128, 8, 64) and scope["dk"].shape == (2, 128, 2, 64)
