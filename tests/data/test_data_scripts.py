"""data_scripts/download.py offline: checksum verification and zip unpacking (no network)."""

import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

from recsys_coldstart.data import load_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "data_scripts" / "download.py"


@pytest.fixture(scope="module")
def dl():
    spec = importlib.util.spec_from_file_location("download_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_checksums_match_staged_files(dl, need_dataset):
    report = dict(dl.verify(need_dataset("ml-100k"), "ml-100k"))
    assert set(report.values()) == {"ok"}


def test_mismatch_and_missing_reported(dl, tmp_path):
    (tmp_path / "gowalla").mkdir()
    (tmp_path / "gowalla" / "train.txt").write_text("0 1\n")
    report = dict(dl.verify(tmp_path, "gowalla"))
    assert report["gowalla/train.txt"] == "MISMATCH" and report["gowalla/test.txt"] == "missing"
    assert dl.main(["--dest", str(tmp_path), "--verify-only", "gowalla"]) == 1


def test_download_unpacks_zip_offline(dl, tmp_path, monkeypatch):
    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::10::5::100\n2::10::3::200\n")
        zf.writestr("ml-1m/users.dat", "1::F::25::3::1\n2::M::35::4::2\n")
        zf.writestr("ml-1m/movies.dat", "10::GoldenEye (1995)::Action|Thriller\n")
        zf.writestr("ml-1m/README", "readme\n")
        zf.writestr("ml-1m/../evil.txt", "must not escape\n")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(dl, "_fetch", lambda url, target: (target.parent.mkdir(parents=True, exist_ok=True),
                                                           target.write_bytes(archive.read_bytes())))
    monkeypatch.setattr(dl, "_publisher_md5", lambda url: md5)
    dest = tmp_path / "data"
    report = dl.download(dest, "ml-1m")
    assert all(st.startswith("unverified") for _, st in report)
    assert not (dest / "evil.txt").exists()
    d = load_dataset("ml-1m", dest)
    assert d.ratings.nnz == 2 and d.nnz == 1
    monkeypatch.setattr(dl, "_publisher_md5", lambda url: "0" * 32)
    with pytest.raises(SystemExit, match="does not match"):
        dl.download(dest, "ml-1m", force=True)
