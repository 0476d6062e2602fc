"""Download, verify and unpack the public datasets that ``recsys_coldstart`` loads.

For users with internet; never run by the tests or by the library (which only reads local
files). Usage::

    python data_scripts/download.py --dest ~/data/recsys ml-100k gowalla
    python data_scripts/download.py --dest ~/data/recsys --verify-only      # check what is there
    export RECSYS_COLDSTART_DATA=~/data/recsys                             # then: coldstart datasets

Each dataset lands in ``<dest>/<name>/`` in the layout ``load_dataset`` expects. Files are
checked against the SHA-256 / MD5 sums in ``CHECKSUMS`` (from the project's data notes and the
published RecZoo md5s); MovieLens zips are also checked against the ``.md5`` file GroupLens
publishes beside each zip. A file whose checksum is not known is reported as *unverified*
with its SHA-256, never silently accepted as verified. CiteULike-a has no stable download URL
and is not fetched here (see README.md).

Only the Python standard library is used (urllib, hashlib, zipfile).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
LIGHTGCN = "https://raw.githubusercontent.com/kuandeng/LightGCN/master/Data"

# name -> list of (relative path, url or None when it comes out of a zip)
SOURCES: dict[str, dict] = {
    "ml-100k": {"zip": f"{GROUPLENS}/ml-100k.zip", "files": ["u.data", "u.user", "u.item", "u.genre",
                                                              "u.occupation", "u.info", "README"]},
    "ml-1m": {"zip": f"{GROUPLENS}/ml-1m.zip", "files": ["ratings.dat", "users.dat", "movies.dat", "README"]},
    "gowalla": {"urls": {f: f"{LIGHTGCN}/gowalla/{f}" for f in ("train.txt", "test.txt", "user_list.txt",
                                                                 "item_list.txt")}},
    "yelp2018": {"urls": {f: f"{LIGHTGCN}/yelp2018/{f}" for f in ("train.txt", "test.txt", "user_list.txt",
                                                                  "item_list.txt")}},
    "amazon-book": {"urls": {f: f"{LIGHTGCN}/amazon-book/{f}" for f in ("train.txt", "test.txt", "user_list.txt",
                                                                        "item_list.txt")}},
}

# (algorithm, hex digest) per "<dataset>/<file>"; from ../shared/data/README.md (sha256 of the
# staged original files) and RecZoo's published md5s (yelp2018 train.txt: the original file).
CHECKSUMS: dict[str, tuple[str, str]] = {
    "ml-100k/u.data": ("sha256", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    "ml-100k/u.user": ("sha256", "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
    "ml-100k/u.item": ("sha256", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    "ml-100k/u.genre": ("sha256", "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
    "ml-100k/u.occupation": ("sha256", "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
    "ml-100k/README": ("sha256", "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
    "ml-100k/u.info": ("sha256", "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
    "gowalla/train.txt": ("sha256", "7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62"),
    "gowalla/test.txt": ("sha256", "099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3"),
    "gowalla/user_list.txt": ("sha256", "5344c4d0deef610e1f148f23ad216a0db03b36f88834cd39a06786a672c5f5a1"),
    "gowalla/item_list.txt": ("sha256", "6b186f92890cc3f0c15a6dae5d6285f125a302bb8c5ea0cd9a16cf9c16347139"),
    "yelp2018/train.txt": ("md5", "1b8b5d22a227e01d6de002c53d32b4c4"),
    "yelp2018/test.txt": ("sha256", "9cd9b37926cd1447a06625ffa7914527573fb097c10cb0bbdb1d1b8ded3742fe"),
    "yelp2018/user_list.txt": ("sha256", "4931519d8b3c40d71a34cc386c3287b6d63c1be9a82edd7ee6bfad765e640778"),
    "yelp2018/item_list.txt": ("sha256", "1091bc824b60561906df552f2f7cb3ec61767b1e46fd4386b44400ae49712007"),
}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(dest: Path, name: str) -> list[tuple[str, str]]:
    """Check the files of dataset ``name`` under ``dest``.

    Returns
    -------
    list of (relative path, status) with status ``"ok"``, ``"MISMATCH"``, ``"missing"`` or
    ``"unverified sha256=<digest>"``.
    """
    spec = SOURCES[name]
    files = spec["files"] if "files" in spec else list(spec["urls"])
    out = []
    for f in files:
        rel = f"{name}/{f}"
        path = dest / name / f
        if not path.is_file():
            out.append((rel, "missing"))
        elif rel in CHECKSUMS:
            algo, want = CHECKSUMS[rel]
            out.append((rel, "ok" if file_digest(path, algo) == want else "MISMATCH"))
        else:
            out.append((rel, f"unverified sha256={file_digest(path)}"))
    return out


def _fetch(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` atomically (through a ``.part`` file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    print(f"  downloading {url}", flush=True)
    req = urllib.request.Request(url, headers={"User-Agent": "recsys_coldstart-data-script"})
    with urllib.request.urlopen(req, timeout=60) as resp, open(part, "wb") as fh:
        shutil.copyfileobj(resp, fh, length=1 << 20)
    os.replace(part, target)


def _publisher_md5(url: str) -> str | None:
    """The md5 GroupLens publishes as ``<zip>.md5`` (None when unavailable)."""
    try:
        with urllib.request.urlopen(url + ".md5", timeout=30) as resp:
            text = resp.read().decode("ascii", errors="replace")
    except OSError:
        return None
    for token in text.split():
        if len(token) == 32 and all(c in "0123456789abcdef" for c in token.lower()):
            return token.lower()
    return None


def download(dest: Path, name: str, *, force: bool = False) -> list[tuple[str, str]]:
    """Fetch, verify and unpack dataset ``name`` into ``dest/name``; returns :func:`verify`'s report."""
    spec = SOURCES[name]
    folder = dest / name
    if not force and all(st in ("ok",) or st.startswith("unverified") for _, st in verify(dest, name)):
        print(f"{name}: already present")
        return verify(dest, name)
    if "zip" in spec:
        cache = dest / "_downloads" / Path(spec["zip"]).name
        if force or not cache.is_file():
            _fetch(spec["zip"], cache)
        want = _publisher_md5(spec["zip"])
        got = file_digest(cache, "md5")
        if want is None:
            print(f"  {cache.name}: publisher md5 not reachable; md5={got} (files are checked below)")
        elif want != got:
            cache.unlink()
            raise SystemExit(f"{cache.name}: md5 {got} does not match the published {want}; deleted, try again")
        else:
            print(f"  {cache.name}: md5 ok")
        with zipfile.ZipFile(cache) as zf:
            prefix = f"{name}/"
            for member in zf.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    rel = Path(member[len(prefix):])
                    if rel.is_absolute() or ".." in rel.parts:
                        continue  # never write outside the dataset folder
                    out = folder / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    else:
        for f, url in spec["urls"].items():
            if force or not (folder / f).is_file():
                _fetch(url, folder / f)
    report = verify(dest, name)
    for rel, status in report:
        print(f"  {rel}: {status}")
    if any(st in ("MISMATCH", "missing") for _, st in report):
        raise SystemExit(f"{name}: verification failed (see above)")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", default=list(SOURCES), help=f"datasets (default: all): {', '.join(SOURCES)}")
    p.add_argument("--dest", default=os.environ.get("RECSYS_COLDSTART_DATA"),
                   help="data folder (default: $RECSYS_COLDSTART_DATA)")
    p.add_argument("--verify-only", action="store_true", help="check the files already there; download nothing")
    p.add_argument("--force", action="store_true", help="download again even if present")
    args = p.parse_args(argv)
    if not args.dest:
        p.error("give --dest DIR or set RECSYS_COLDSTART_DATA")
    unknown = [n for n in args.names if n not in SOURCES]
    if unknown:
        p.error(f"unknown dataset(s) {unknown}; choose from {', '.join(SOURCES)}")
    dest = Path(args.dest).expanduser()
    bad = False
    for name in args.names:
        if args.verify_only:
            print(name)
            for rel, status in verify(dest, name):
                print(f"  {rel}: {status}")
                bad |= status in ("MISMATCH",)
        else:
            print(name)
            download(dest, name, force=args.force)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
