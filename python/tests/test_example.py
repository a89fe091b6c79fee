"""examples/quickstart.py runs and shows what it says."""
import os
import pathlib
import subprocess
import sys

import shelf

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(shelf.__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, str(EXAMPLE)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "user7 -> [(" in out and "batch -> [[" in out and "why sku" in out
    ndcg = {l.split()[0]: float(l.split()[2]) for l in out.splitlines() if "NDCG@10" in l}
    assert set(ndcg) == {"pop", "itemknn", "ease"}
    assert ndcg["ease"] > ndcg["pop"] and ndcg["itemknn"] > ndcg["pop"]  # the taste groups are learnt
