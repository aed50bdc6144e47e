"""scripts/augment_experiment.py (issue 12's augmentation experiment): the stratified label subsets, the
exported subset zips, and one tiny end-to-end run with all three arms on the bundled 8×8 digits."""
from __future__ import annotations

import json
import zipfile

import pytest
import torch

from _scripts import load_script
from conftest import TINY_DCGAN

experiment = load_script("scripts/augment_experiment.py")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_stratified_subset_takes_round_f_n_c_at_least_one_per_class():
    labels = torch.tensor([0] * 10 + [1] * 3 + [3] * 50)[torch.randperm(63, generator=torch.Generator().manual_seed(0))]
    idx = experiment.stratified_subset(labels, 0.1, seed=0)
    assert torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == len(idx)
    assert torch.bincount(labels[idx], minlength=4).tolist() == [1, 1, 0, 5]  # 1, max(1, round(0.3)), none, 5
    assert torch.equal(idx, experiment.stratified_subset(labels, 0.1, seed=0))  # the same subset for every arm
    assert not torch.equal(experiment.stratified_subset(labels, 0.5, seed=0),
                           experiment.stratified_subset(labels, 0.5, seed=1))
    assert len(experiment.stratified_subset(labels, 1.0, seed=0)) == 63


def test_export_and_three_arms_end_to_end(tmp_path, capsys):
    from imagegen.cli import main
    from imagegen.data import build_dataset

    experiment.main(["--data", "digits", "--fractions", "0.1", "--export-subsets", str(tmp_path / "subsets")])
    train = build_dataset("digits", split="train")
    expected = sum(max(1, round(0.1 * int(n))) for n in torch.bincount(train.labels))
    with zipfile.ZipFile(tmp_path / "subsets" / "digits-0.1.zip") as z:
        names = z.namelist()
    assert len(names) == expected and {n.split("/")[0] for n in names} == {str(c) for c in range(10)}

    run = tmp_path / "cgan"  # a class-conditional run on the exported 10 % subset (2 steps: only the plumbing)
    main(["train", "cgan", "--data", str(tmp_path / "subsets" / "digits-0.1.zip"), *TINY_DCGAN[2:], "--steps", "2",
          "--threads", "1", "--out", str(run)])
    out = tmp_path / "aug.json"
    experiment.main(["--data", "digits", "--fractions", "0.1,1", "--seeds", "0,1", "--min-steps", "3", "--epochs", "0",
                     "--batch-size", "32", "--gen-per-class", "3", "--cgan-run", f"0.1={run}", "--out", str(out)])
    record = json.loads(out.read_text())
    tenth, full = record["results"]["0.1"], record["results"]["1"]
    assert tenth["num_real"] == expected and full["num_real"] == len(train)
    assert set(tenth) >= {"real", "real+aug", "real+gen"} and "real+gen" not in full  # no run for 100 %
    assert tenth["generated"]["num"] == 30 and tenth["steps"] == full["steps"] == 3  # one budget for every arm
    for row in (tenth, full):
        for arm in ("real", "real+aug", "real+gen"):
            if arm in row:
                accs = row[arm]["accuracies"]
                assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)
                assert row[arm]["mean"] == pytest.approx(sum(accs) / 2)
    assert record["protocol"]["seeds"] == [0, 1] and record["protocol"]["data"] == "digits"
    table = capsys.readouterr().out
    assert "| 10% (" in table and "| 100% (" in table and table.count("—") == 1
