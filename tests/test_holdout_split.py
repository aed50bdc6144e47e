"""scripts/holdout_split.py: seeded, byte-identical train/held-out split of image folders and zips."""
from __future__ import annotations

import json
import zipfile

import numpy as np
from PIL import Image

from imagegen.data import build_dataset

from _scripts import load_script

split = load_script("scripts/holdout_split.py")


def make_domain(tmp_path, name: str, n: int, as_zip: bool):
    folder = tmp_path / f"{name}_src"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / "sub" / f"{name}{i}.png")
    if not as_zip:
        return folder
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((folder / "sub").iterdir()):
            zf.write(f, f"{name}/trainA/{f.name}")
    return path


def test_split_counts_bytes_labels_and_seed(tmp_path, capsys):
    a, b = make_domain(tmp_path, "horse", 20, as_zip=True), make_domain(tmp_path, "zebra", 10, as_zip=False)
    args = ["--domain", f"horse={a}", "--domain", f"zebra={b}", "--fraction", "0.25", "--seed", "3"]
    assert split.main(args + ["--out", str(tmp_path / "o1")]) == 0
    o1 = tmp_path / "o1"
    assert len(list((o1 / "test/horse").iterdir())) == 5 and len(list((o1 / "train/horse").iterdir())) == 15
    assert len(list((o1 / "test/zebra").iterdir())) == 2 and len(list((o1 / "train/zebra").iterdir())) == 8
    record = json.loads((o1 / "split.json").read_text())
    assert set(record["domains"]["horse"]["test"]).isdisjoint(record["domains"]["horse"]["train"])
    # copied unchanged
    for f in (o1 / "train/zebra").iterdir():
        assert f.read_bytes() == (b / "sub" / f.name).read_bytes()
    with zipfile.ZipFile(a) as zf:
        for f in (o1 / "test/horse").iterdir():
            assert f.read_bytes() == zf.read(f"horse/trainA/{f.name}")
    # OUT/train is a labelled dataset
    ds = build_dataset(str(o1 / "train"))
    assert len(ds) == 23 and ds.class_names == ["horse", "zebra"] and int((ds.labels == 1).sum()) == 8
    # same seed, same split; another seed, another split
    assert split.main(args + ["--out", str(tmp_path / "o2")]) == 0
    assert json.loads((tmp_path / "o2/split.json").read_text()) == record
    args[-1] = "4"
    assert split.main(args + ["--out", str(tmp_path / "o3")]) == 0
    assert json.loads((tmp_path / "o3/split.json").read_text())["domains"]["horse"]["test"] != record["domains"]["horse"]["test"]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    a = make_domain(tmp_path, "horse", 4, as_zip=False)
    out = tmp_path / "o"
    assert split.main(["--domain", f"horse={a}", "--out", str(out)]) == 0
    before = sorted(p.name for p in (out / "train/horse").iterdir())
    assert split.main(["--domain", f"horse={a}", "--out", str(out)]) == 2  # not overwritten
    assert "--force" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "train/horse").iterdir()) == before
    assert split.main(["--domain", f"horse={a}", "--out", str(out), "--force", "--fraction", "0.5"]) == 0
    assert len(list((out / "test/horse").iterdir())) == 2
    for bad in (["--domain", "horse"], ["--domain", f"horse={tmp_path / 'missing.zip'}"],
                ["--domain", f"horse={a}", "--fraction", "1.5"],
                ["--domain", f"horse={a}", "--domain", f"horse={a}"]):
        capsys.readouterr()
        assert split.main(bad + ["--out", str(tmp_path / "o_bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
