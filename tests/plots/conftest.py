"""Plot tests reuse the protocol fits of tests/diagnostics (diagnostics_protocol_fit.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "diagnostics"))
