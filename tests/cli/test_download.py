"""``download-assets`` against a local HTTP server on 127.0.0.1 serving small fake files (never the real
network): folders, resume after a cut connection, checksum, 404, timeout, offline."""

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webui_lora import download
from webui_lora.cli import main
from webui_lora.download import AssetFile, download_assets
from webui_lora.errors import UserError

HUBERT = b"config-" * 10
WEIGHTS = bytes(range(256)) * 40  # 10,240 bytes


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` with Range support; ``cut[path]`` bytes are sent once before the connection drops;
    ``delay`` seconds pass before any answer; ``ranges`` lists (path, Range header) of each request;
    ``honour_ranges`` False answers every request with the whole file, as some servers do."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.cut, self.delay, self.ranges, self.honour_ranges = {}, {}, 0.0, [], True

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/repo"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.ranges.append((self.path, self.headers.get("Range")))
        time.sleep(server.delay)
        data = server.files.get(self.path.removeprefix("/repo/"))
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = int(self.headers["Range"][6:].rstrip("-")) if self.headers.get("Range") and server.honour_ranges else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        cut = server.cut.pop(self.path.removeprefix("/repo/"), None)
        self.wfile.write(body[:cut] if cut is not None else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = FileServer()
    httpd.files = {"hubert_base/config.json": HUBERT, "weights.bin": WEIGHTS}
    monkeypatch.setattr(download, "ASSETS", {
        "hubert": (asset("hubert_base/config.json", "hubert_base/config.json", HUBERT),),
        "rmvpe": (asset("weights.bin", "rmvpe/rmvpe.pt", WEIGHTS),),
    })
    monkeypatch.setattr(download, "CHUNK", 1024)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def asset(remote, local, data):
    return AssetFile(remote, local, len(data), hashlib.sha256(data).hexdigest())


def test_fetches_into_rvc_folders_with_progress_and_skips_what_is_there(server, tmp_path, capsys):
    seen = []
    lines = download_assets(["hubert", "rmvpe"], tmp_path, source=server.url,
                            progress=lambda done, total, name: seen.append((done, total, name)))
    assert (tmp_path / "hubert_base" / "config.json").read_bytes() == HUBERT
    assert (tmp_path / "rmvpe" / "rmvpe.pt").read_bytes() == WEIGHTS
    assert all("downloaded" in line and "sha256 checked" in line for line in lines)
    assert seen[-1] == (len(WEIGHTS), len(WEIGHTS), "rmvpe.pt") and len(seen) > 2
    assert not list(tmp_path.rglob("*.part"))
    assert main(["download-assets", "--only", "hubert,rmvpe", "--dest", str(tmp_path), "--source", server.url]) == 0
    assert capsys.readouterr().out.count("already there") == 2 and len(server.ranges) == 2


def test_a_cut_connection_resumes_where_it_stopped(server, tmp_path):
    server.cut["weights.bin"] = 3000
    download_assets(["rmvpe"], tmp_path, source=server.url)
    assert (tmp_path / "rmvpe" / "rmvpe.pt").read_bytes() == WEIGHTS
    assert server.ranges == [("/repo/weights.bin", None), ("/repo/weights.bin", "bytes=3000-")]


def test_a_partial_file_is_kept_and_the_next_run_resumes_it(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 0)
    server.cut["weights.bin"] = 4096
    with pytest.raises(UserError, match=r"4,096 of 10,240 bytes are kept in .*rmvpe\.pt\.part: run the same command"):
        download_assets(["rmvpe"], tmp_path, source=server.url)
    assert (tmp_path / "rmvpe" / "rmvpe.pt.part").stat().st_size == 4096
    assert not (tmp_path / "rmvpe" / "rmvpe.pt").exists()
    download_assets(["rmvpe"], tmp_path, source=server.url)
    assert (tmp_path / "rmvpe" / "rmvpe.pt").read_bytes() == WEIGHTS
    assert server.ranges[-1] == ("/repo/weights.bin", "bytes=4096-")


def test_a_server_that_ignores_the_range_is_read_from_the_start(server, tmp_path):
    server.cut["weights.bin"], server.honour_ranges = 2000, False
    download_assets(["rmvpe"], tmp_path, source=server.url)
    assert (tmp_path / "rmvpe" / "rmvpe.pt").read_bytes() == WEIGHTS


def test_a_wrong_checksum_is_refused_and_removed(server, tmp_path):
    server.files["weights.bin"] = WEIGHTS[::-1]  # the right size, other bytes
    with pytest.raises(UserError, match="sha256 mismatch .*the file is removed"):
        download_assets(["rmvpe"], tmp_path, source=server.url)
    assert not list((tmp_path / "rmvpe").iterdir())


def test_a_missing_file_is_a_404_that_names_the_url(server, tmp_path, capsys):
    del server.files["weights.bin"]
    assert main(["download-assets", "--only", "rmvpe", "--dest", str(tmp_path), "--source", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {server.url}/weights.bin: HTTP 404") and "check --source" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "rmvpe" / "rmvpe.pt").exists()


def test_a_silent_server_times_out_after_its_retries(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    server.delay = 1.0
    with pytest.raises(UserError, match=r"no answer within 0.2 s \(2 tries\)"):
        download_assets(["hubert"], tmp_path, source=server.url, timeout=0.2)
    assert len(server.ranges) == 2


def test_offline_says_so_in_one_line(tmp_path, capsys):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    assert main(["download-assets", "--only", "hubert", "--dest", str(tmp_path),
                 "--source", f"http://127.0.0.1:{port}/repo"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the server" in err and "offline?" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_asset_name_lists_the_choices(capsys):
    assert main(["download-assets", "--only", "hubert,rvmpe"]) == 2
    err = capsys.readouterr().err
    assert "--only rvmpe" in err and "choose from hubert, rmvpe, pretrained-v2, pretrained-v1" in err


def test_the_table_has_one_entry_per_local_file_with_a_sha256():
    files = [item for items in download.ASSETS.values() for item in items]
    assert len({item.local for item in files}) == len(files) == 3 + 1 + 12 + 12
    assert all(len(item.sha256) == 64 and item.size > 0 for item in files)
