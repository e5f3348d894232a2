"""Durability: a write that returned survives SIGKILL of the process right after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from cnosdb_lite import Engine

WRITER = textwrap.dedent("""
    import sys
    from cnosdb_lite import Engine
    e = Engine(sys.argv[1])
    i = 0
    while True:
        e.write_lines("cnosdb", "public", "\\n".join(f"m,w=w{i} n={j}i {i * 1000 + j}" for j in range(50)))
        if i == 3:
            e.execute("cnosdb", "public", "CREATE DATABASE other")
        print(i, flush=True)
        i += 1
""")


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data)], stdout=subprocess.PIPE, text=True, env=env)
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 20:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert acked >= 20
    e = Engine(data)
    try:
        rows = e.execute("cnosdb", "public", "SELECT w, count(*) AS n FROM m GROUP BY w").to_pylist()
        counts = {r["w"]: r["n"] for r in rows}
        assert all(counts.get(f"w{i}") == 50 for i in range(acked + 1))
        assert {"database_name": "other"} in e.execute("cnosdb", "public", "SHOW DATABASES").to_pylist()
    finally:
        e.close()
