"""The standard RVC assets, fetched from RVC's public model repository into the folders RVC names.

One table says what each asset is: the file's path in that repository, where it goes under an asset
folder, its size and its sha256. A download goes to ``<file>.part``, resumes from there (an HTTP Range
request) after a cut connection or on the next run, and is moved into place only when its size and
sha256 are right; a wrong file is removed. Only the standard library's HTTP client is used.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import UserError

SOURCE = "https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main"
CHUNK = 1 << 20
RETRIES = 3  # reconnects per file after a cut connection, each resuming where the last stopped

Progress = Optional[Callable[[int, int, str], None]]  # (bytes done, bytes total, file)


@dataclass(frozen=True)
class AssetFile:
    remote: str  # path in the model repository
    local: str  # path under the asset folder, as RVC lays it out
    size: int
    sha256: str


def _pretrained(folder: str, entries: Sequence[tuple]) -> tuple:
    return tuple(AssetFile(f"{folder}/{name}", f"{folder}/{name}", size, digest) for name, size, digest in entries)


ASSETS = {
    # RVC 2026's transformers HuBERT folder: serves v2 models, and v1 ones through its final_proj.
    "hubert": (
        AssetFile("hubert_base/config.json", "hubert_base/config.json", 1492,
                  "0346950779dfb7f9316fa74ed846e2b8a22a08eedfdc5387b73f327cb1a4a7cf"),
        AssetFile("hubert_base/preprocessor_config.json", "hubert_base/preprocessor_config.json", 225,
                  "7c1976a680fb7acc757cd36fb08eef878fa36c70b4c9d2d595df9c608bbbbf0e"),
        AssetFile("hubert_base/pytorch_model.bin", "hubert_base/pytorch_model.bin", 189206711,
                  "cc8c20f4b90a520757260197a3ff2505705a7adbd20ad9eeaa4e1a9b38442ef5"),
    ),
    "rmvpe": (
        AssetFile("rmvpe.pt", "rmvpe/rmvpe.pt", 181184272,
                  "6d62215f4306e3ca278246188607209f09af3dc77ed4232efdd069798c4ec193"),
    ),
    "pretrained-v2": _pretrained("pretrained_v2", (
        ("f0G32k.pth", 73950049, "2332611297b8d88c7436de8f17ef5f07a2119353e962cd93cda5806d59a1133d"),
        ("f0D32k.pth", 142875703, "bd7134e7793674c85474d5145d2d982e3c5d8124fc7bb6c20f710ed65808fa8a"),
        ("G32k.pth", 73811639, "869b26a47f75168d6126f64ac39e6de5247017a8658cfd68aca600f7323efb9f"),
        ("D32k.pth", 142875703, "d8043378cc6619083d385f5a045de09b83fb3bf8de45c433ca863b71723ac3ca"),
        ("f0G40k.pth", 73106273, "3b2c44035e782c4b14ddc0bede9e2f4a724d025cd073f736d4f43708453adfcb"),
        ("f0D40k.pth", 142875703, "6b6ab091e70801b28e3f41f335f2fc5f3f35c75b39ae2628d419644ec2b0fa09"),
        ("G40k.pth", 72959671, "a3843da7fde33db1dab176146c70d6c2df06eafe9457f4e3aa10024e9c6a4b69"),
        ("D40k.pth", 142875703, "471378e894e7191f89a94eda8288c5947b16bbe0b10c3f1f17efdb7a1d998242"),
        ("f0G48k.pth", 75465569, "b5d51f589cc3632d4eae36a315b4179397695042edc01d15312e1bddc2b764a4"),
        ("f0D48k.pth", 142875703, "2269b73c7a4cf34da09aea99274dabf99b2ddb8a42cbfb065fb3c0aa9a2fc748"),
        ("G48k.pth", 75318967, "2e2b1581a436d07a76b10b9d38765f64aa02836dc65c7dee1ce4140c11ea158b"),
        ("D48k.pth", 142875703, "db01094a93c09868a278e03dafe8bb781bfcc1a5ba8df168c948bf9168c84d82"),
    )),
    "pretrained-v1": _pretrained("pretrained", (
        ("f0G32k.pth", 72795627, "285f524bf48bb692c76ad7bd0bc654c12bd9e5edeb784dddf7f61a789a608574"),
        ("f0D32k.pth", 109978943, "294db3087236e2c75260d6179056791c9231245daf5d0485545d9e54c4057c77"),
        ("G32k.pth", 72653893, "81817645cde7ed2e2d83f23ef883f33dda564924b497e84d792743912eca4c23"),
        ("D32k.pth", 109978943, "2ab20645829460fdad0d3c44254f1ab53c32cae50c22a66c926ae5aa30abda6f"),
        ("f0G40k.pth", 72909665, "9115654aeef1995f7dd3c6fc4140bebbef0ca9760bed798105a2380a34299831"),
        ("f0D40k.pth", 109978943, "7d4f5a441594b470d67579958b2fd4c6b992852ded28ff9e72eda67abcebe423"),
        ("G40k.pth", 72763063, "e428573bda1124b0ae0ae843fd8dcded6027d3993444790b3e9b0100938b2113"),
        ("D40k.pth", 109978943, "547f66dbbcd9023b9051ed244d12ab043ba8a4e854b154cc28761ac7c002909b"),
        ("f0G48k.pth", 73008619, "78bc9cab27e34bcfc194f93029374d871d8b3e663ddedea32a9709e894cc8fe8"),
        ("f0D48k.pth", 109978943, "1b84c8bf347ad1e539c842e8f2a4c36ecd9e7fb23c16041189e4877e9b07925c"),
        ("G48k.pth", 72850501, "3862a67ea6313e8ffefc05cee6bee656ef3e089442e9ecf4a6618d60721f3e95"),
        ("D48k.pth", 109978943, "8cc013fa60ed9c3f902f5bd99f48c7e3b9352d763d4d3cd6bc241c37b0bfd9ad"),
    )),
}
DEFAULT = ("hubert", "rmvpe", "pretrained-v2")  # conversion, and training adapters on v2 models


def select(only: Optional[str] = None) -> list:
    """The asset names a ``--only hubert,rmvpe`` list means (default: ``DEFAULT``)."""
    names = [name.strip() for name in only.split(",") if name.strip()] if only else list(DEFAULT)
    unknown = [name for name in names if name not in ASSETS]
    if unknown:
        raise UserError(f"--only {','.join(unknown)}", f"unknown asset; choose from {', '.join(ASSETS)}")
    return names


def download_assets(names: Sequence[str], dest, *, source: str = SOURCE, timeout: float = 30,
                    progress: Progress = None) -> list:
    """Fetch the assets ``names`` into the asset folder ``dest``; returns one line per file."""
    dest = Path(dest)
    lines = []
    for name in names:
        for item in ASSETS[name]:
            target = dest / item.local
            if target.is_file() and target.stat().st_size == item.size:
                lines.append(f"{target}: already there")
                continue
            fetch(f"{source.rstrip('/')}/{item.remote}", target, item.size, item.sha256, timeout=timeout,
                  progress=progress)
            lines.append(f"{target}: downloaded, {item.size / 1e6:.1f} MB, sha256 checked")
    return lines


def fetch(url: str, target: Path, size: int, sha256: str, *, timeout: float = 30, progress: Progress = None) -> Path:
    """Download ``url`` to ``target`` through ``target.part`` (resumed if present), check it, move it in place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(RETRIES + 1):
        try:
            _download_into(url, part, size, timeout, progress, target.name)
            break
        except (ConnectionError, http.client.IncompleteRead, TimeoutError) as err:
            if attempt == RETRIES:
                kept = part.stat().st_size if part.exists() else 0
                raise UserError(url, f"{_reason(err)} ({RETRIES + 1} tries); {kept:,} of {size:,} bytes are kept in "
                                     f"{part}: run the same command again to resume") from None
    got = part.stat().st_size
    if got != size:
        part.unlink()
        raise UserError(url, f"sent {got:,} bytes, expected {size:,}; the partial file is removed, "
                             "run the command again")
    digest = _sha256(part)
    if digest != sha256:
        part.unlink()
        raise UserError(url, f"sha256 mismatch (got {digest[:16]}..., expected {sha256[:16]}...): the file is "
                             "removed; run the command again, and if it repeats the repository's file has changed")
    os.replace(part, target)
    return target


def _download_into(url: str, part: Path, size: int, timeout: float, progress: Progress, label: str) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request from its current size)."""
    have = part.stat().st_size if part.exists() else 0
    if have >= size:
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the part is already complete (or longer): let the checks decide
            return
        raise UserError(url, f"HTTP {err.code} {err.reason}: the file is not there; check --source") from None
    except TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        raise UserError(url, f"cannot reach the server ({_reason(err.reason)}): offline? Connect and run the "
                             "command again, or put the files in place by hand (see assets/README.md)") from None
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        with open(part, "ab" if have else "wb") as out:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                have += len(chunk)
                if progress is not None:
                    progress(have, size, label)
    if have < size:
        raise ConnectionError(f"the connection closed after {have:,} of {size:,} bytes")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _reason(err) -> str:
    return str(err) or type(err).__name__
