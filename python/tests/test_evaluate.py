"""shelf.evaluate gives the numbers of `shelf eval --json` (the same split,
fit and shelf_eval_run, reproduced through the ABI) on a
MovieLens-100k-format fixture written by the test."""
import json
import math
import subprocess

import pytest
import scipy.sparse as sps

import shelf
from shelf.evaluate import isclose_metrics


def _cli(shelf_bin, tmp_path, data, *args):
    out = tmp_path / "out.json"
    subprocess.run([shelf_bin, "eval", "--format", "ml100k", "--data", data, "--json", str(out), "--quiet",
                    "--log-level", "warn", *args], check=True, capture_output=True)
    return json.loads(out.read_text())


def _same(py, cli_entry):
    assert py["users"] == cli_entry["users"]
    assert py["params"] == cli_entry["params"]
    bad = {k: (py["metrics"].get(k), v) for k, v in cli_entry["metrics"].items()
           if not isclose_metrics({k: py["metrics"].get(k, -1)}, {k: v})}
    assert bad == {} and set(py["metrics"]) == set(cli_entry["metrics"])


def test_loo_matches_the_cli(shelf_bin, ml100k, tmp_path):
    cli = _cli(shelf_bin, tmp_path, ml100k, "--models", "pop,itemknn,ease", "--k", "10,20")
    assert cli["protocol"] == "loo-full" and len(cli["models"]) == 3
    for entry in cli["models"]:
        py = shelf.evaluate(entry["model"], ml100k, format="ml100k", protocol="loo", k=[10, 20])
        assert py["protocol"] == "loo-full" and py["targets"] == "test"
        assert (py["data"]["users"], py["data"]["items"], py["data"]["events"]) == (
            cli["users"], cli["items"], cli["events"])
        _same(py, entry)
    ndcg = {e["model"]: e["metrics"]["ndcg@10"] for e in cli["models"]}
    assert all(0 < v < 1 for v in ndcg.values())


def test_options_seed_and_s100_match_the_cli(shelf_bin, ml100k, tmp_path):
    cli = _cli(shelf_bin, tmp_path, ml100k, "--models", "ease", "--k", "5,10", "--protocol", "loo-s100",
               "--seed", "7", "--ease-lambda", "30", "--valid")
    py = shelf.evaluate(shelf.models.EASE(l2=30), ml100k, format="ml100k", protocol="loo-s100", k=[5, 10],
                        seed=7, valid=True)
    assert py["targets"] == "valid" and py["params"]["ease-lambda"] == 30
    _same(py, cli["models"][0])
    py2 = shelf.evaluate("ease", ml100k, format="ml100k", protocol="loo-s100", k=[5, 10], seed=7, valid=True,
                         l2=30)
    assert isclose_metrics(py2["metrics"], py["metrics"], tol=0)


def test_evaluate_a_store_and_a_matrix(ml100k):
    st = shelf.Store()
    st.import_file(ml100k, "ml100k")
    a = shelf.evaluate("itemknn", st, k=[10])
    b = shelf.evaluate("itemknn", ml100k, format="ml100k", k=[10])
    assert isclose_metrics(a["metrics"], b["metrics"], tol=0)
    X = sps.random(60, 40, density=0.15, random_state=4, format="csr")
    X.data[:] = 1
    r = shelf.evaluate("pop", X, k=[5])
    assert r["data"]["users"] == 60 and 0 <= r["metrics"]["hr@5"] <= 1
    assert math.isnan(r["metrics"]["ild_category@5"])  # no categories: the CLI's null


def test_evaluate_errors(ml100k, tmp_path):
    with pytest.raises(shelf.InvalidArgument, match="unknown protocol 'kfold'"):
        shelf.evaluate("ease", ml100k, format="ml100k", protocol="kfold")
    with pytest.raises(shelf.InvalidArgument, match="k wants ascending cut-offs in 1..20"):
        shelf.evaluate("ease", ml100k, format="ml100k", k=[20, 10])
    with pytest.raises(TypeError, match="give its format="):
        shelf.evaluate("ease", ml100k)
    with pytest.raises(shelf.NotFound, match="unknown model 'easy'"):
        shelf.evaluate("easy", ml100k, format="ml100k")
    bad = tmp_path / "u.data"
    bad.write_text("1\t2\t9\t880000000\n")
    with pytest.raises(shelf.InvalidArgument, match="u.data:1") as e:
        shelf.evaluate("pop", str(bad), format="ml100k")
    assert e.value.name == "ERANGE"
    one = shelf.Store()
    one.add_events(["a", "b"], ["x", "y"])
    with pytest.raises(shelf.InvalidArgument, match="no user has a test target"):
        shelf.evaluate("pop", one)
    with pytest.raises(shelf.InvalidArgument, match="temporal protocol needs timestamps"):
        shelf.evaluate("pop", one, protocol="temporal")
