"""``imagegen sample RUN --num-per-class N --out synth.zip|DIR``: a labelled data set from a conditional model
that the toolkit's own folder/zip loader reads back with the right labels (imagegen.sampling.labelled)."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from conftest import TINY_DCGAN, run_cli
from imagegen.data import build_dataset
from imagegen.data.idx import CLASS_NAMES
from imagegen.sampling import generate, load_run
from imagegen.sampling.images import to_uint8_nhwc
from imagegen.sampling.labelled import class_folder_names


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    from imagegen.cli import main

    run = tmp_path_factory.mktemp("runs") / "cgan"
    main(["train", "cgan", "--data", "digits", "--resolution", "8", "--g-width", "8", "--d-width", "8", "--z-dim", "8",
          "--steps", "1", "--batch-size", "8", "--out", str(run), "--no-progress"])
    return run


def test_folder_names_sort_in_label_order():
    assert class_folder_names(10, [str(i) for i in range(10)]) == [str(i) for i in range(10)]
    assert class_folder_names(12) == [f"{i:02d}" for i in range(12)]  # "10" would sort before "2"
    twelve = class_folder_names(12, [str(i) for i in range(12)])
    assert twelve[10] == "10" and sorted(twelve) == twelve
    cifar = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert class_folder_names(10, cifar) == cifar  # already in sorted order: the names as they are
    fashion = class_folder_names(10, CLASS_NAMES["fashion-mnist"])
    assert fashion[:2] == ["0_T-shirt_top", "1_Trouser"] and sorted(fashion) == fashion
    assert class_folder_names(3, [".hidden", "b", "c"]) == ["0_hidden", "1_b", "2_c"]
    assert class_folder_names(2, ["a", "b", "c"]) == ["0", "1"]  # names that do not fit are ignored


def test_zip_and_folder_load_back_with_labels_and_counts(cgan_run, tmp_path, capsys):
    out = tmp_path / "synth.zip"
    code, stdout, err = run_cli(["sample", cgan_run, "--num-per-class", "3", "--seed", "4", "--out", out], capsys)
    assert code == 0, err
    assert "wrote 30 images (3 per class, 10 classes, 1x8x8)" in stdout
    with zipfile.ZipFile(out) as z:
        names = sorted(z.namelist())
    assert names[:4] == ["0/000000.png", "0/000001.png", "0/000002.png", "1/000000.png"] and len(names) == 30
    ds = build_dataset(str(out))
    assert len(ds) == 30 and ds.class_names == [str(i) for i in range(10)] and ds.channels == 1
    assert torch.bincount(ds.labels).tolist() == [3] * 10
    model = load_run(cgan_run)
    for c in (0, 7):  # each class's images are the model's samples of that class, bit for bit
        expected = to_uint8_nhwc(generate(model, 3, seed=4 * 10 + c, labels=torch.full((3,), c)))
        got = ds.images[ds.labels == c].permute(0, 2, 3, 1).numpy()
        assert (got == expected).all()

    folder = tmp_path / "synth"
    code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "2", "--seed", "4", "--out", folder], capsys)
    assert code == 0, err
    ds2 = build_dataset(str(folder))
    assert torch.bincount(ds2.labels).tolist() == [2] * 10 and ds2.class_names == ds.class_names
    expected = to_uint8_nhwc(generate(model, 2, seed=4 * 10 + 7, labels=torch.full((2,), 7)))
    assert (ds2.images[ds2.labels == 7].permute(0, 2, 3, 1).numpy() == expected).all()


def test_existing_outputs_need_force_and_bad_input_exits_2(cgan_run, tmp_path, capsys):
    out = tmp_path / "s.zip"
    out.write_bytes(b"old")
    code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "1", "--out", out], capsys)
    assert code == 2 and "already exists; pass --force" in err and out.read_bytes() == b"old"
    code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "1", "--out", out, "--force"], capsys)
    assert code == 0, err
    assert len(build_dataset(str(out))) == 10
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "x.txt").write_text("keep")
    code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "1", "--out", folder], capsys)
    assert code == 2 and "exists and is not empty; pass --force" in err
    code, out_text, err = run_cli(["sample", cgan_run, "--num-per-class", "2", "--out", folder, "--force"], capsys)
    assert code == 0 and "note:" not in out_text, err
    code, out_text, err = run_cli(["sample", cgan_run, "--num-per-class", "1", "--out", folder, "--force"], capsys)
    assert code == 0 and "note: 10 images of an earlier run (000001.png and above) remain" in out_text, err
    assert (folder / "x.txt").read_text() == "keep"  # other files are left alone
    for args, message in ((["--out", tmp_path / "s.npz"], "writes an image folder or a .zip"),
                          (["--out", tmp_path / "n.zip", "--class", "3"], "drop --class"),
                          (["--out", tmp_path / "missing" / "n.zip"], "does not exist")):
        code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "1", *args], capsys)
        assert code == 2 and message in err, err
    code, _, err = run_cli(["sample", cgan_run, "--num-per-class", "0", "--out", tmp_path / "z.zip"], capsys)
    assert code == 2 and "--num-per-class 0" in err


def test_class_grid_takes_num_per_class_as_the_row_length(cgan_run, tmp_path, capsys):
    from PIL import Image

    grids = {}
    for args in (["--num-per-class", "3"], ["--num", "30"]):
        out = tmp_path / f"grid{len(grids)}.png"
        code, _, err = run_cli(["sample", cgan_run, "--class-grid", *args, "--seed", "2", "--out", out], capsys)
        assert code == 0, err
        grids[args[0]] = np.asarray(Image.open(out))
    assert np.array_equal(grids["--num-per-class"], grids["--num"])  # 3 per row either way
    code, _, err = run_cli(["sample", cgan_run, "--class-grid", "--num-per-class", "0", "--out", tmp_path / "g.png"],
                           capsys)
    assert code == 2 and "--num-per-class 0" in err


def test_unconditional_run_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "dcgan"
    code, _, err = run_cli(["train", "dcgan", *TINY_DCGAN, "--steps", "1", "--out", run], capsys)
    assert code == 0, err
    code, _, err = run_cli(["sample", run, "--num-per-class", "5", "--out", tmp_path / "synth.zip"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "needs a class-conditional model; dcgan is unconditional" in err
    assert not (tmp_path / "synth.zip").exists()
