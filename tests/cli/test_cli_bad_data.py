"""Bad data through the command line: exit code 2 and one line naming the file / column / option.

``CASES`` is the table of bad inputs (issue 13, defects 3, 7 and 9): each case writes its files,
runs ``coldstart ...`` and expects exit code 2 with exactly one ``error:`` line that contains a
given fragment. ``coldstart split`` also writes back exactly the id strings it read.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from recsys_coldstart.cli import main


def _good_table(n_users: int = 40, per_user: int = 6, *, rating: str | None = None) -> str:
    lines = ["user,item,rating"]
    for u in range(n_users):
        for j in range(per_user):
            lines.append(f"u{u},i{(u * 3 + j * 7) % 50},{rating or (1 + (u + j) % 5)}")
    return "\n".join(lines) + "\n"


GOOD = _good_table()
_FEATS = "user,age\n" + "".join(f"u{u},{20 + u}\n" for u in range(40))


def _zip_two() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", GOOD)
        zf.writestr("b.csv", GOOD)
    return buf.getvalue()


def _lines(text: str, *, replace: dict[int, str]) -> str:
    lines = text.splitlines()
    for k, v in replace.items():
        lines[k] = v
    return "\n".join(lines) + "\n"


EVAL = ["evaluate", "--model", "popularity", "--interactions"]
# (case id, files to write {name: text or bytes; a name ending in "/" is a folder}, arguments, expected fragment)
CASES: list[tuple[str, dict, list[str], str]] = [
    ("folder as --interactions", {"tables/": None, "tables/a.csv": GOOD}, EVAL + ["tables"],
     "tables: is a folder, not a file"),
    ("folder as --user-features", {"t.csv": GOOD, "feats/": None}, EVAL + ["t.csv", "--user-features", "feats"],
     "feats: is a folder, not a file (give the user-feature table"),
    ("missing file", {}, EVAL + ["nope.csv"], "nope.csv: no such file"),
    ("empty file", {"t.csv": ""}, EVAL + ["t.csv"], "t.csv: the interaction file is empty"),
    ("header only", {"t.csv": "user,item,rating\n"}, EVAL + ["t.csv"], "t.csv: the interaction file has no data rows"),
    ("truncated last line (no final newline)", {"t.csv": GOOD + "u1,i3"}, EVAL + ["t.csv"],
     "t.csv: line 242 (the last) has 2 of 3 fields and no final newline: the interaction file looks truncated"),
    ("truncated last line", {"t.csv": GOOD + "u1\n"}, EVAL + ["t.csv"],
     "t.csv: line 242 (the last) has 1 of 3 fields: the interaction file looks truncated"),
    ("cut-off gzip", {"t.csv.gz": gzip.compress(GOOD.encode())[:60]}, EVAL + ["t.csv.gz"],
     "t.csv.gz: cannot read the gzip file"),
    ("zip holding two tables", {"t.zip": _zip_two()}, EVAL + ["t.zip"],
     "error: t.zip: a zip file must hold exactly one table, found 2 files"),
    ("latin-1 bytes read as UTF-8", {"t.csv": "user,item\ncaf\xe9,1\nb,2\n".encode("latin-1")}, EVAL + ["t.csv"],
     "encoding='latin-1' (--encoding latin-1)"),
    ("wrong --sep", {"t.csv": GOOD}, EVAL + ["t.csv", "--sep", ";"], "pass sep=',' (--sep ',')"),
    ("user column missing", {"t.csv": GOOD}, EVAL + ["t.csv", "--user-col", "uid"],
     "t.csv: missing column(s) ['uid']; columns present: ['user', 'item', 'rating']"),
    ("rating not a number", {"t.csv": _lines(GOOD, replace={3: "u0,i9,five"})}, EVAL + ["t.csv"],
     "t.csv: column 'rating' must be numeric and finite; row 2 (line 4) holds 'five'"),
    ("empty rating cell", {"t.csv": _lines(GOOD, replace={3: "u0,i9,"})}, EVAL + ["t.csv"],
     "t.csv: column 'rating' must be numeric and finite; row 2 (line 4) holds nan"),
    ("negative rating, no --threshold", {"t.csv": _lines(GOOD, replace={5: "u0,i9,-1"})}, EVAL + ["t.csv"],
     "t.csv: column 'rating' row 4 (line 6) holds -1.0 (1 rating(s) <= 0): without a threshold"),
    ("zero rating, no --threshold", {"t.csv": _lines(GOOD, replace={2: "u0,i9,0"})}, EVAL + ["t.csv"],
     "t.csv: column 'rating' row 1 (line 3) holds 0.0 (1 rating(s) <= 0)"),
    ("extra field on a line", {"t.csv": _lines(GOOD, replace={7: "u1,i2,3,99"})}, EVAL + ["t.csv"],
     "t.csv: cannot parse the interaction file (sep=','): Error tokenizing data. C error: Expected 3 fields in line 8"),
    ("empty id", {"t.csv": _lines(GOOD, replace={4: ",i9,4"})}, EVAL + ["t.csv"],
     "t.csv: column 'user' has 1 missing id(s), first at row 3 (line 5)"),
    ("feature table without the id column", {"t.csv": GOOD, "f.csv": _FEATS.replace("user,", "uid,", 1)},
     EVAL + ["t.csv", "--user-features", "f.csv"],
     "f.csv: user-feature id column 'user' not found; columns present: ['uid', 'age'] (on the command line "
     "--user-col names the id column of both tables"),
    ("feature ids match no interaction", {"t.csv": GOOD, "f.csv": _FEATS + "nobody,30\n"},
     EVAL + ["t.csv", "--user-features", "f.csv"],
     "f.csv: 1 id(s) in the feature table match no interaction, e.g. ['nobody']"),
    ("feature ids with leading zeros", {"t.csv": "user,item\n7,1\n8,2\n", "f.csv": "user,age\n007,1\n8,2\n"},
     EVAL + ["t.csv", "--user-features", "f.csv"], "f.csv: 1 id(s) in the feature table match no interaction, e.g. ['007']"),
    ("NaN feature", {"t.csv": GOOD, "f.csv": _FEATS.replace("u3,23", "u3,NaN")},
     EVAL + ["t.csv", "--user-features", "f.csv"], "f.csv: column 'age' has a NaN or infinite value for id 'u3'"),
    ("user-cold --k-support 500 (split)", {"t.csv": GOOD}, ["split", "--interactions", "t.csv", "--split", "user-cold",
                                                         "--k-support", "500", "--out", "out"],
     "dataset 't': user-cold split with K=500 leaves no test cold user with a held-out positive"),
    ("user-cold --k-support 500 (evaluate)", {"t.csv": GOOD}, EVAL + ["t.csv", "--split", "user-cold",
                                                                       "--k-support", "500"],
     "(all 4 have at most 500 positives, the largest has 6): nothing to evaluate; lower K (--k-support)"),
    ("warm split of one-positive users", {"t.csv": _good_table(per_user=1)}, EVAL + ["t.csv"],
     "t (warm split, seed 0): no user has held-out test positives, so nothing was evaluated"),
    ("--format xlsx", {"t.csv": GOOD}, ["split", "--interactions", "t.csv", "--format", "xlsx", "--out", "out"],
     "--format must be csv or parquet"),
]


def write_case_files(folder: Path, files: dict) -> None:
    """Create the files (and folders, names ending in '/') of a case under ``folder``."""
    for name, content in files.items():
        p = folder / name
        if name.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exit_2_one_line(tmp_path, monkeypatch, capsys, case):
    _, files, args, fragment = case
    write_case_files(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    assert fragment in errors[0], errors[0]


IDS = ["007", "7", " 7", "7 ", "2.5", "12345678901234567890", "9007199254740993", "été", "ユーザー", "NA",
       "a,b", 'say "hi"', "-0", "+7"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("kind", ["warm", "user-cold"])
def test_split_writes_back_exactly_the_ids_it_read(tmp_path, capsys, fmt, kind):
    users = IDS * 3 + [f"x{k}" for k in range(20)]  # each IDS text names one user with several rows
    rows = [(u, f"i{(k * 5 + j) % 23}") for k, u in enumerate(users) for j in range(4)]
    df = pd.DataFrame(rows, columns=["user", "item"], dtype=object).drop_duplicates()
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    code = main(["split", "--interactions", str(src), "--split", kind, "--k-support", "1", "--format", fmt,
                 "--out", str(tmp_path / "s")])
    assert code == 0, capsys.readouterr().err
    parts = ["train", "val", "test"] + (["support"] if kind == "user-cold" else [])
    read = (lambda p: pd.read_parquet(p)) if fmt == "parquet" else (
        lambda p: pd.read_csv(p, dtype=str, keep_default_na=False))
    out = pd.concat([read(tmp_path / "s" / f"{p}.{fmt}") for p in parts])
    assert sorted(map(str, out.user)) == sorted(df.user)  # every row back, each id the same text
    assert set(map(str, out.user)) == set(users)
    manifest = json.loads((tmp_path / "s" / "split.json").read_text())
    assert set(manifest["test_users"]) <= set(users)


def test_split_and_evaluate_print_users_left_out(ml100k_dir, tmp_path, capsys):
    code = main(["split", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--split", "user-cold",
                 "--k-support", "10", "--out", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: 8 of 94 test and 7 of 94 val cold users have fewer than K+1=11 positives" in out
    manifest = json.loads((tmp_path / "s" / "split.json").read_text())
    assert len(manifest["dropped_test_users"]) == 8 and len(manifest["dropped_val_users"]) == 7
    code = main(["evaluate", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--split", "user-cold",
                 "--k-support", "20", "--model", "popularity"])
    out = capsys.readouterr().out
    assert code == 0 and "note: 23 of 94 test and 31 of 94 val cold users" in out
    assert "71" in out  # the users column: 94 - 23 evaluated


def test_gzip_with_a_lying_suffix_and_bom_are_read(tmp_path, capsys):
    (tmp_path / "t.csv").write_bytes(gzip.compress(GOOD.encode()))
    (tmp_path / "b.csv").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    for name in ("t.csv", "b.csv"):
        assert main(EVAL + [str(tmp_path / name)]) == 0, capsys.readouterr().err
        assert "ndcg@20" in capsys.readouterr().out
