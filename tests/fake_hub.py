"""A small in-memory fake of the Hugging Face Hub's HTTP API, for tests that push and pull without the network.

It serves just enough of the Hub for ``huggingface_hub`` (``create_repo``, ``create_branch``, ``upload_folder``,
``upload_file``, ``hf_hub_download``, ``snapshot_download``, ``repo_info``, ``list_repo_tree``, ``whoami``),
``transformers`` (``from_pretrained("user/repo")``, remote code included) and ``datasets`` (``push_to_hub``,
``load_dataset("user/name")``). Uploads go through the legacy LFS protocol: the :func:`fake_hub` fixture sets
``HF_HUB_DISABLE_XET=1``.

Storage is git-like: every commit is an immutable snapshot ``{path: FileEntry}``; a branch names a commit. A
revision is a branch name or a full commit sha, so a download pinned to a commit (as ``snapshot_download`` does)
sees exactly that snapshot.

Use it through the ``fake_hub`` fixture::

    from .fake_hub import fake_hub_fixture  # noqa: F401  (registers the `fake_hub` fixture)

    def test_push(fake_hub):
        ...  # HF_ENDPOINT, HF_TOKEN, HF_HOME... point at the fake Hub here
        assert fake_hub.file("user/repo", "config.json") is not None
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

GOOD_TOKEN = "hf_fake_test_token_0123456789"
USER = "user"
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Files stored as LFS objects, as the Hub's default .gitattributes does (plus any binary content or large file).
LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.parquet", "*.arrow", "*.npy", "*.png", "*.jpg", "*.zip")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS).encode()


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub calls a regular file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileEntry:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-LFS pointer file that git stores in place of an LFS file."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()
        )

    @property
    def blob_id(self) -> str:
        return git_blob_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        # The Hub's ETag: the sha256 for LFS files, the git blob id otherwise.
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class Commit:
    sha: str
    files: dict[str, FileEntry]
    parent: str | None
    title: str
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit sha
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content, PUT before the commit using it

    def resolve(self, revision: str) -> Commit | None:
        """The commit that a revision (branch name or full commit sha) points to."""
        sha = self.branches.get(revision, revision)
        return self.commits.get(sha)


class HubError(Exception):
    """An error answer: status, JSON ``{"error": message}`` and the Hub's ``X-Error-Code`` header when given."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class FakeHubServer(ThreadingHTTPServer):
    """The fake Hub: an HTTP server on ``127.0.0.1`` holding repositories in memory.

    Attributes useful to tests: ``url``, ``token``, ``repos`` (``{(repo_type, repo_id): Repo}``) and ``requests``
    (``(method, path, status)`` of every request served, in order).
    """

    daemon_threads = True

    def __init__(self, token: str = GOOD_TOKEN):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._commit_counter = 0

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> FakeHubServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- inspection helpers for tests -----------------------------------------------------------------------------
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def file(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes | None:
        """The content of ``path`` at ``revision``, or ``None`` if the repo, revision or file does not exist."""
        repo = self.repo(repo_id, repo_type)
        commit = repo.resolve(revision) if repo else None
        entry = commit.files.get(path) if commit else None
        return entry.data if entry else None

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        repo = self.repo(repo_id, repo_type)
        commit = repo.resolve(revision) if repo else None
        return sorted(commit.files) if commit else []

    # -- state changes --------------------------------------------------------------------------------------------
    def create_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None = None) -> Repo:
        repo = Repo(repo_type, repo_id, private, sdk)
        # The Hub starts every repository with a commit that adds .gitattributes.
        self.add_commit(repo, "main", {".gitattributes": FileEntry(GITATTRIBUTES, lfs=False)}, "initial commit")
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def add_commit(self, repo: Repo, branch: str, files: dict[str, FileEntry], title: str) -> Commit:
        self._commit_counter += 1
        parent = repo.branches.get(branch)
        seed = f"{repo.repo_type}/{repo.repo_id}/{branch}/{parent}/{title}/{self._commit_counter}"
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), files, parent, title, _now())
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        return commit


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer carries Content-Length
    server: FakeHubServer

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    # -- plumbing -------------------------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        # expand=true asks for each entry's last commit (HfFileSystem lists with it).
        self.expand = self.query.get("expand", "").lower() in ("true", "1")
        # Segments stay percent-encoded until each route decodes its own: a revision such as "refs%2Fpr%2F1" is
        # one segment.
        self.segments = [s for s in split.path.split("/") if s]
        status = 500
        try:
            status = self._route(method)
        except HubError as err:
            status = err.status
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message
            self._send_json({"error": err.message}, status, headers)
        finally:
            with self.server.lock:
                self.server.requests.append((method, split.path, status))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self):
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return parse_qs(body.decode())  # paths-info sends a form
        return json.loads(body or b"{}")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of the GET answer and no body
            self.wfile.write(body)
        return status

    def _send_json(self, payload, status: int = 200, headers: dict | None = None) -> int:
        return self._send(status, json.dumps(payload).encode(), "application/json", headers)

    # -- authentication -------------------------------------------------------------------------------------------
    def _token(self) -> str | None:
        """The bearer token of the request; a token that is not the configured one is refused (401), as the Hub
        refuses an invalid token even on public resources."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token != self.server.token:
            raise HubError(401, "Invalid credentials in Authorization header")
        return token

    def _require_token(self) -> None:
        if self._token() is None:
            raise HubError(401, "You must be authenticated to do this (no token was sent).")

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        authenticated = self._token() is not None
        if write and not authenticated:
            raise HubError(401, "You must be authenticated to write to a repository.")
        repo = self.server.repos.get((repo_type, repo_id))
        # As the Hub: a private repo is invisible without a token (here: without the one valid token).
        if repo is None or (repo.private and not authenticated):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # -- routing --------------------------------------------------------------------------------------------------
    def _route(self, method: str) -> int:
        seg = self.segments
        with self.server.lock:
            if seg[:1] == ["api"]:
                return self._route_api(method, seg[1:])
            if seg[:1] == ["_lfs_upload"] and len(seg) == 5 and method == "PUT":  # /_lfs_upload/{type}/{repo}/{oid}
                return self._lfs_put(seg[1], f"{seg[2]}/{seg[3]}", seg[4])
            # File and LFS routes: [datasets|spaces/]{namespace}/{name}[.git]/...
            repo_type = "model"
            if seg and seg[0] in ("datasets", "spaces"):
                repo_type, seg = REPO_TYPES[seg[0]], seg[1:]
            if len(seg) >= 4 and seg[2] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", unquote(seg[3]), unquote("/".join(seg[4:])))
            if len(seg) == 6 and seg[1].endswith(".git") and seg[2:] == ["info", "lfs", "objects", "batch"]:
                return self._lfs_batch(repo_type, f"{seg[0]}/{seg[1].removesuffix('.git')}")
        raise HubError(404, f"The fake Hub has no route for {method} {self.path}")

    def _route_api(self, method: str, seg: list[str]) -> int:
        if seg == ["whoami-v2"] and method == "GET":  # HfApi.whoami (push.py checks the token with it)
            return self._whoami()
        if seg == ["repos", "create"] and method == "POST":  # HfApi.create_repo
            return self._create_repo()
        if seg == ["validate-yaml"] and method == "POST":  # RepoCard.validate / push_to_hub of cards
            self._body()
            return self._send_json({"errors": [], "warnings": []})
        if len(seg) < 3 or seg[0] not in REPO_TYPES:
            raise HubError(404, f"The fake Hub has no route for {method} {self.path}")
        repo_type, repo_id, rest = REPO_TYPES[seg[0]], f"{seg[1]}/{seg[2]}", seg[3:]
        action = rest[0] if rest else None
        if action is None and method == "GET":  # model_info / dataset_info / space_info / repo_info
            return self._info(repo_type, repo_id, "main")
        if action == "revision" and len(rest) == 2 and method == "GET":  # repo_info(revision=...)
            return self._info(repo_type, repo_id, unquote(rest[1]))
        if action == "tree" and len(rest) >= 2 and method == "GET":  # list_repo_tree, HfFileSystem.ls
            return self._tree(repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])))
        if action == "paths-info" and len(rest) == 2 and method == "POST":  # get_paths_info, HfFileSystem.info
            return self._paths_info(repo_type, repo_id, unquote(rest[1]))
        if action == "preupload" and len(rest) == 2 and method == "POST":  # every create_commit
            return self._preupload(repo_type, repo_id, unquote(rest[1]))
        if action == "commit" and len(rest) == 2 and method == "POST":  # create_commit (NDJSON)
            return self._create_commit(repo_type, repo_id, unquote(rest[1]))
        if action == "branch" and len(rest) == 2 and method == "POST":  # create_branch
            return self._create_branch(repo_type, repo_id, unquote(rest[1]))
        if action == "refs" and method == "GET":  # list_repo_refs
            return self._refs(repo_type, repo_id)
        if action == "commits" and len(rest) == 2 and method == "GET":  # list_repo_commits
            return self._commits(repo_type, repo_id, unquote(rest[1]))
        raise HubError(404, f"The fake Hub has no route for {method} {self.path}")

    # -- account and repositories ---------------------------------------------------------------------------------
    def _whoami(self) -> int:
        self._require_token()
        return self._send_json(
            {
                "type": "user",
                "name": USER,
                "fullname": "Test User",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
            }
        )

    def _create_repo(self) -> int:
        self._require_token()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        if repo_type == "space" and not payload.get("sdk"):
            raise HubError(400, "A Space needs an sdk.")
        if (repo_type, repo_id) in self.server.repos:
            raise HubError(409, "You already created this repo", headers={})
        self.server.create_repo(repo_type, repo_id, payload.get("visibility") == "private", payload.get("sdk"))
        return self._send_json({"url": f"{self.server.url}/{URL_PREFIXES[repo_type]}{repo_id}", "name": repo_id})

    def _create_branch(self, repo_type: str, repo_id: str, branch: str) -> int:
        repo = self._repo(repo_type, repo_id, write=True)
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = self._commit(repo, self._json_body().get("startingPoint") or "main")
        repo.branches[branch] = start.sha
        return self._send_json({})

    def _info(self, repo_type: str, repo_id: str, revision: str) -> int:
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, revision)
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": len(entry.data), "blobId": entry.blob_id}
            if entry.lfs:
                sibling["lfs"] = {"size": len(entry.data), "sha256": entry.sha256, "pointerSize": len(entry.pointer)}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": commit.date,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo.sdk:
            info["sdk"] = repo.sdk
        return self._send_json(info)

    def _refs(self, repo_type: str, repo_id: str) -> int:
        repo = self._repo(repo_type, repo_id)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()]
        return self._send_json({"branches": branches, "converts": [], "tags": []})

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> int:
        repo = self._repo(repo_type, repo_id)
        commit, history = self._commit(repo, revision), []
        while commit is not None:
            history.append(
                {"id": commit.sha, "title": commit.title, "message": "", "authors": [], "date": commit.date}
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return self._send_json(history)

    # -- reading files --------------------------------------------------------------------------------------------
    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> int:
        """HEAD/GET ``/{repo}/resolve/{revision}/{path}``: hf_hub_download (HEAD for metadata then GET),
        HfFileSystem reads (GET with a Range header)."""
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            # The commit header lets hf_hub_download cache the file's absence (.no_exist) for that commit.
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(len(entry.data))})
        data, status = entry.data, 200
        byte_range = self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes="):
            start_text, _, end_text = byte_range.removeprefix("bytes=").partition("-")
            start = int(start_text) if start_text else max(0, len(data) - int(end_text))
            end = int(end_text) if start_text and end_text else len(data) - 1
            if start >= len(data) and len(data) > 0:
                raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        return self._send(status, data, "application/octet-stream", headers)

    def _entries(self, commit: Commit, folder: str, recursive: bool) -> list[dict] | None:
        """Tree entries (files and folders) under ``folder``; ``None`` if the folder does not exist."""
        prefix = f"{folder}/" if folder else ""
        files, folders = {}, set()
        for path, entry in commit.files.items():
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                files[path] = entry
        if folder and not files and not folders:
            return None
        return [self._folder_info(p, commit) for p in sorted(folders)] + [
            self._file_info(p, e, commit) for p, e in sorted(files.items())
        ]

    def _file_info(self, path: str, entry: FileEntry, commit: Commit) -> dict:
        info = {"type": "file", "path": path, "size": len(entry.data), "oid": entry.blob_id}
        if entry.lfs:
            info["lfs"] = {"oid": entry.sha256, "size": len(entry.data), "pointerSize": len(entry.pointer)}
        if self.expand:
            info["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
        return info

    def _folder_info(self, path: str, commit: Commit) -> dict:
        info = {"type": "directory", "path": path, "oid": hashlib.sha1(f"{commit.sha}/{path}".encode()).hexdigest()}
        if self.expand:
            info["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
        return info

    def _tree(self, repo_type: str, repo_id: str, revision: str, folder: str) -> int:
        """GET ``/api/{type}s/{repo}/tree/{revision}[/{folder}]``; a missing folder answers 404 EntryNotFound
        (datasets' push_to_hub lists ``data/`` of a new repo and expects that)."""
        commit = self._commit(self._repo(repo_type, repo_id), revision)
        entries = self._entries(commit, folder.strip("/"), self.query.get("recursive", "").lower() in ("true", "1"))
        if entries is None:
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        return self._send_json(entries)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> int:
        commit = self._commit(self._repo(repo_type, repo_id), revision)
        form = self._json_body()
        paths = form.get("paths", [])
        self.expand = str(form.get("expand", ["false"])[-1]).lower() == "true"
        out = []
        for path in paths if isinstance(paths, list) else [paths]:
            path = path.strip("/")
            if path in commit.files:
                out.append(self._file_info(path, commit.files[path], commit))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append(self._folder_info(path, commit))
        return self._send_json(out)

    # -- writing files --------------------------------------------------------------------------------------------
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> int:
        """Tells the client, per file, "regular" (inline base64 in the commit) or "lfs" (LFS batch + PUT)."""
        commit = self._commit(self._repo(repo_type, repo_id, write=True), revision)
        answers = []
        for item in self._json_body()["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = (
                item["size"] >= LFS_MIN_SIZE or b"\0" in sample or any(fnmatch(item["path"], p) for p in LFS_PATTERNS)
            )
            existing = commit.files.get(item["path"])
            # The client skips a file whose oid equals its local one (sha256 for LFS, git blob id otherwise).
            oid = existing.etag if existing is not None else None
            answers.append(
                {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return self._send_json({"files": answers, "commitOid": commit.sha})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> int:
        """POST ``/{repo}.git/info/lfs/objects/batch``: where to PUT each LFS object (nothing for known ones)."""
        repo = self._repo(repo_type, repo_id, write=True)
        objects = []
        for obj in self._json_body()["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in repo.lfs_objects:
                href = f"{self.server.url}/_lfs_upload/{repo_type}/{repo_id}/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(answer)
        return self._send(
            200, json.dumps({"transfer": "basic", "objects": objects}).encode(), "application/vnd.git-lfs+json"
        )

    def _lfs_put(self, repo_type: str, repo_id: str, oid: str) -> int:
        """PUT of an LFS object (on the Hub, a signed S3 URL: no token is sent, none is checked)."""
        repo = self.server.repos.get((repo_type, repo_id))
        data = self._body()
        if repo is None or hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"LFS object does not match its oid {oid} or its repository {repo_id}")
        repo.lfs_objects[oid] = data
        return self._send(200, b"", "text/plain")

    def _create_commit(self, repo_type: str, repo_id: str, revision: str) -> int:
        """POST ``/api/{type}s/{repo}/commit/{revision}`` with an NDJSON body: a header line then one line per
        operation (``file`` inline base64, ``lfsFile`` by sha256, ``deletedFile``, ``deletedFolder``)."""
        repo = self._repo(repo_type, repo_id, write=True)
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision} (commits go to branches)", "RevisionNotFound")
        files = dict(self._commit(repo, revision).files)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.branches[revision]:
            raise HubError(412, "A commit has happened since the parent commit. Please retry.")
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = FileEntry(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                data = repo.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = FileEntry(data, lfs=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: e for p, e in files.items() if not p.startswith(prefix)}
            else:
                raise HubError(400, f"The fake Hub does not support the commit operation {key!r}")
        commit = self.server.add_commit(repo, revision, files, header.get("summary", ""))
        prefix = f"{self.server.url}/{URL_PREFIXES[repo_type]}{repo_id}"
        return self._send_json(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{prefix}/commit/{commit.sha}",
                "pullRequestUrl": None,
                "hookOutput": "",
            }
        )


def _refuse_other_hosts(real_getaddrinfo):
    """A ``socket.getaddrinfo`` that only resolves the loopback address: nothing reaches the real Hub."""

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1", b"localhost"):
            raise OSError(f"the fake_hub fixture blocks network access to {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    return getaddrinfo


@pytest.fixture(name="fake_hub")
def fake_hub_fixture(monkeypatch, tmp_path_factory):
    """A running :class:`FakeHubServer`; the Hub clients of this process and its child processes talk to it.

    Sets ``HF_ENDPOINT``, ``HF_TOKEN`` (the accepted token), ``HF_HUB_DISABLE_XET``, ``HF_HUB_DISABLE_TELEMETRY`` and
    a fresh ``HF_HOME`` (with its caches) for child processes, and patches the values that ``huggingface_hub`` and
    ``datasets`` computed from them when this process imported them (transformers reads ``huggingface_hub``'s).
    Name resolution of any host but the loopback fails while the fixture is active: nothing reaches the real Hub.
    """
    import datasets
    from huggingface_hub import HfFileSystem, constants, hf_api

    server = FakeHubServer().start()
    home = tmp_path_factory.mktemp("hf_home")
    env = {
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": server.token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_MODULES_CACHE": str(home / "modules"),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)

    # huggingface_hub reads its environment once, at import, into `constants` (and the module-level HfApi).
    patches = {
        "ENDPOINT": server.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": server.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_OFFLINE": False,
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", server.url)
    # datasets copies the endpoint, caches and offline flag into `datasets.config` at import.
    for name, value in {
        "HF_ENDPOINT": server.url,
        "HUB_DATASETS_URL": server.url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": home / "datasets",
        "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
        "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
    }.items():
        monkeypatch.setattr(datasets.config, name, value)
    # Not patched: transformers' HF_MODULES_CACHE (where remote code is written, then imported as the package
    # `transformers_modules` found through sys.path). Child processes get HF_MODULES_CACHE above; test remote code
    # there, as in this process the classes that bikanet_hf registers win over a repo's auto_map anyway.
    monkeypatch.setattr(socket, "getaddrinfo", _refuse_other_hosts(socket.getaddrinfo))
    HfFileSystem.clear_instance_cache()  # its instances are cached per endpoint and token, with their listings
    try:
        yield server
    finally:
        server.stop()
        HfFileSystem.clear_instance_cache()


__all__ = ["GOOD_TOKEN", "FakeHubServer", "fake_hub_fixture"]
