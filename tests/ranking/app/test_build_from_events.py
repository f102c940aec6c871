"""``marginrank build --events``: LambdaMART trained (and the weights tuned and evaluated) on
debiased interaction labels from simulated logs of the small world, with or beside judgments;
logs of another bundle and a catalog the serving bundle did not index are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ranking.app.cli import main
from ranking.experiments.simulator import TrafficSimulator, write_simulation
from tests.events_support import shared_bundle


@pytest.fixture(scope="module")
def logs(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    bundle = shared_bundle(small_world, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("build-events")
    explore = tmp / "explore.yaml"
    explore.write_text((bundle / "weights.yaml").read_text()
                       + "\nexploration: {share: 0.5, top_k: 3, seed: 4}\n")
    sim = TrafficSimulator(bundle, small_world / "judgments.csv", seed=5)
    write_simulation(tmp / "events", [sim.run_day(d, explore, searches=2000) for d in range(2)])
    return {"bundle": bundle, "events": tmp / "events", "tmp": tmp, "world": small_world}


def _build(logs: dict[str, Path], out: Path, *extra: str, catalog: Path | None = None,
           served: Path | None = None) -> int:
    w = logs["world"]
    return main(["build", "--catalog", str(catalog or w / "catalog.csv"), "--transactions",
                 str(w / "transactions.csv.gz"), "--events", str(logs["events"]),
                 "--served-bundle", str(served or logs["bundle"]), "--out", str(out), *extra])


def test_build_from_events_alone(logs: dict[str, Path]) -> None:
    out = logs["tmp"] / "from-events"
    assert _build(logs, out) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labels_used"].startswith("debiased interactions from ")
    assert "clipped at 10" in report["labels_used"]
    assert "- labels: debiased interactions" in (out / "report.md").read_text()
    from ranking.ranker import Ranker

    learned, served = Ranker.load(out / "bundle"), Ranker.load(logs["bundle"])
    assert learned.search("drill", k=5)
    # Groups are the products actually shown: every training query is a logged query.
    queries = set(json.loads((out / "bundle" / "queries.json").read_text())["queries"])
    logged = set(pd.read_parquet(logs["events"] / "impressions")["query"].dropna())
    assert queries and queries <= logged
    # The features are the served ones: the new bundle indexes the serving bundle's catalog.
    assert learned.catalog.product_ids == served.catalog.product_ids
    assert (learned.catalog.priors[~pd.isna(learned.catalog.priors)]
            == served.catalog.priors[~pd.isna(served.catalog.priors)]).all()


def test_build_beside_judgments_says_which_labels(logs: dict[str, Path]) -> None:
    out = logs["tmp"] / "beside"
    judged = logs["tmp"] / "half_judgments.csv"
    j = pd.read_csv(logs["world"] / "judgments.csv", dtype={"product_id": str})
    keep = sorted(j["query"].unique())[::2]
    j[j["query"].isin(keep)].to_csv(judged, index=False)
    assert _build(logs, out, "--judgments", str(judged)) == 0
    used = json.loads((out / "report.json").read_text())["labels_used"]
    assert used.startswith(f"judgments ({judged}) beside debiased interactions"), used
    assert f"{len(keep):,} queries labelled by judgments" in used


def test_build_refuses_logs_of_another_bundle(logs: dict[str, Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    other = logs["tmp"] / "from-events" / "bundle"
    if not (other / "manifest.json").is_file():
        assert _build(logs, logs["tmp"] / "from-events") == 0
    capsys.readouterr()
    assert _build(logs, logs["tmp"] / "refused", served=other) == 2
    assert "served by bundle version" in capsys.readouterr().err


def test_build_refuses_a_catalog_the_serving_bundle_did_not_index(
        logs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    changed = logs["tmp"] / "catalog_changed.csv"
    c = pd.read_csv(logs["world"] / "catalog.csv", dtype={"product_id": str})
    c.loc[0, "title"] = c.loc[0, "title"] + " deluxe"
    c.to_csv(changed, index=False)
    assert _build(logs, logs["tmp"] / "refused2", catalog=changed) == 2
    err = capsys.readouterr().err
    assert "is not the one" in err and "1 products or titles differ" in err


def test_build_needs_labels_and_the_serving_bundle(logs: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    w = logs["world"]
    base = ["build", "--catalog", str(w / "catalog.csv"), "--transactions",
            str(w / "transactions.csv.gz"), "--out", str(logs["tmp"] / "none")]
    assert main(base) == 2
    assert "needs --judgments, --events" in capsys.readouterr().err
    assert main([*base, "--events", str(logs["events"])]) == 2
    assert "--events needs --served-bundle" in capsys.readouterr().err
