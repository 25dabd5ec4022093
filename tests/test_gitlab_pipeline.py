"""The GitLab pipeline: the structure of both files (parsed here), and real runs with
gitlab-ci-local (shell executor) on the example fabric in a throwaway clone: which jobs each
kind of pipeline gets, the merge-request pipeline's artifacts (render output, Markdown diff),
the merge-request note posted to a stand-in GitLab API on loopback, and the change-window
guard of the deploy job."""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from conftest import ROOT, require_binary

from inventory.loader import load_fabric
from inventory.topology import compile_fabric
from pipelines.diff_cmd import offline_diff
from pipelines.sharding import shard

TEMPLATE = ROOT / "pipelines" / "gitlab" / "dcvpn.gitlab-ci.yml"
PROJECT = ROOT / ".gitlab-ci.yml"
FABRIC = "inventory/examples/acme-hybrid.yaml"
GCL_VERSION = "4.73.0"  # 4.74+ crash on Node 20 (LAB-FACTS)
GCL_LOCAL = ROOT / ".cache" / "gitlab-ci-local" / "node_modules" / ".bin" / "gitlab-ci-local"
STAGES = ["lint", "render", "diff", "deploy", "validate", "confirm"]
SHARDED = ("dcvpn:render", "dcvpn:diff", "dcvpn:validate")
NEW_SITE = "  - name: sjc1\n"  # the merge request adds this site (the last one of the file)
FILES = {"strongswan": {"swanctl.conf", "strongswan.conf", "frr.conf", "intent.json"},
         "iosxe": {"config.xml", "config.cli", "intent.json"},
         "junos": {"config.xml", "config.set", "intent.json"}}


# --- the files, parsed ------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    path: tuple[str, ...]


class _Loader(yaml.SafeLoader):
    pass


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> Reference:
    assert isinstance(node, yaml.SequenceNode)
    return Reference(tuple(str(n.value) for n in node.value))


_Loader.add_constructor("!reference", _reference)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    return data


def _merge(base: Any, over: Any) -> Any:
    """GitLab's deep merge of include and extends: mappings merge, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    return over


def _resolve_refs(value: Any, doc: dict[str, Any]) -> Any:
    if isinstance(value, Reference):
        target: Any = doc
        for key in value.path:
            target = target[key]
        return _resolve_refs(target, doc)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            resolved = _resolve_refs(item, doc)
            out += resolved if isinstance(item, Reference) and isinstance(resolved, list) \
                else [resolved]
        return out
    if isinstance(value, dict):
        return {k: _resolve_refs(v, doc) for k, v in value.items()}
    return value


def _job(doc: dict[str, Any], name: str) -> dict[str, Any]:
    job: dict[str, Any] = dict(doc[name])
    parents = job.pop("extends", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        job = _merge(_job(doc, parent), job)
    return job


def resolved_jobs(*files: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the merged document, its visible jobs with `extends` and `!reference` resolved)."""
    doc: dict[str, Any] = {}
    for f in files:
        doc = _merge(doc, _load(f))
    doc = {k: v for k, v in doc.items() if k != "include"}
    keywords = {"stages", "variables", "workflow", "default", "include"}
    jobs = {name: _resolve_refs(_job(doc, name), doc) for name in doc
            if name not in keywords and not name.startswith(".")}
    return doc, jobs


def _script(job: dict[str, Any]) -> str:
    return "\n".join(job.get("before_script", []) + job["script"])


@pytest.fixture(scope="module")
def template() -> dict[str, dict[str, Any]]:
    return resolved_jobs(TEMPLATE)[1]


@pytest.fixture(scope="module")
def project() -> dict[str, dict[str, Any]]:
    return resolved_jobs(TEMPLATE, PROJECT)[1]


def test_stages_and_jobs(template: dict[str, dict[str, Any]]) -> None:
    doc = _load(TEMPLATE)
    assert doc["stages"] == STAGES
    stages = {name: job["stage"] for name, job in template.items()}
    assert stages == {"dcvpn:lint": "lint", "dcvpn:render": "render", "dcvpn:diff": "diff",
                      "dcvpn:diff-report": "diff", "dcvpn:deploy": "deploy",
                      "dcvpn:validate": "validate", "dcvpn:confirm": "confirm",
                      "dcvpn:rollback": "confirm"}
    for job in template.values():  # one overridable image, so gitlab-ci-local can use a shell
        assert job["image"] == "$DCVPN_IMAGE"


def test_project_pipeline_uses_the_template_on_the_example(
        project: dict[str, dict[str, Any]]) -> None:
    doc = _load(PROJECT)
    assert doc["include"] == [{"local": "pipelines/gitlab/dcvpn.gitlab-ci.yml"}]
    assert "stages" not in doc  # the template's
    assert doc["variables"]["DCVPN_FABRIC"] == FABRIC
    assert not [f for f in load_fabric(ROOT / FABRIC).fabric.sites if not f.gateways]
    assert set(project) == set(resolved_jobs(TEMPLATE)[1])
    for name in SHARDED:
        assert project[name]["parallel"] == 2


def test_sharded_jobs_pass_their_shard(template: dict[str, dict[str, Any]]) -> None:
    for name, job in template.items():
        script = _script(job)
        if name in SHARDED:
            assert 'shard="${CI_NODE_INDEX:-1}/${CI_NODE_TOTAL:-1}"' in job["before_script"]
            dcvpn_lines = [line for line in script.splitlines()
                           if re.search(r"\$DCVPN_CMD (render|diff|validate)\b", line)]
            assert dcvpn_lines and all('--shard "$shard"' in line for line in dcvpn_lines), name
        else:
            assert "--shard" not in script and "parallel" not in job, name


def test_render_diff_and_validate_artifacts(template: dict[str, dict[str, Any]]) -> None:
    assert template["dcvpn:render"]["artifacts"]["paths"] == ["$DCVPN_OUT/"]
    assert '-o "$DCVPN_OUT"' in _script(template["dcvpn:render"])
    diff = template["dcvpn:diff"]
    assert diff["artifacts"]["paths"] == ["out/diff/"]
    assert diff["variables"]["GIT_DEPTH"] == "0"
    script = _script(diff)
    assert 'git show "$base:$DCVPN_FABRIC"' in script
    assert "CI_MERGE_REQUEST_DIFF_BASE_SHA" in script
    assert '--offline "$old/render"' in script and '--report "$report"' in script
    report = template["dcvpn:diff-report"]
    assert report["needs"] == ["dcvpn:diff"]
    assert report["artifacts"]["paths"] == ["out/diff/diff.md"]
    validate = template["dcvpn:validate"]
    assert validate["artifacts"]["when"] == "always"
    assert validate["artifacts"]["reports"]["junit"] == "out/reports/validate-*.xml"
    assert '--junit "out/reports/validate-${CI_NODE_INDEX:-1}.xml"' in _script(validate)


def test_rules(template: dict[str, dict[str, Any]]) -> None:
    mr = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    default = ('$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && '
               '$CI_PIPELINE_SOURCE != "merge_request_event"')
    assert "rules" not in template["dcvpn:lint"] and "rules" not in template["dcvpn:render"]
    assert template["dcvpn:diff"]["rules"] == mr
    assert template["dcvpn:diff-report"]["rules"] == mr
    assert template["dcvpn:deploy"]["rules"] == [{"if": default, "when": "manual"}]
    assert template["dcvpn:validate"]["rules"] == [{"if": default}]
    assert template["dcvpn:confirm"]["rules"] == [{"if": default}]
    assert template["dcvpn:rollback"]["rules"] == [{"if": default, "when": "on_failure"}]


def test_deploy_chain(template: dict[str, dict[str, Any]]) -> None:
    deploy = template["dcvpn:deploy"]
    group = "dcvpn/$DCVPN_ENVIRONMENT"
    assert deploy["resource_group"] == group
    assert deploy["environment"]["name"] == group
    assert "allow_failure" not in deploy  # a blocking manual job: validate and confirm wait
    lines = deploy["script"]
    assert lines == ["$DCVPN_CMD window check",
                     '$DCVPN_CMD deploy -f "$DCVPN_FABRIC" --confirm-timeout '
                     '"$DCVPN_CONFIRM_TIMEOUT"']
    assert template["dcvpn:validate"]["needs"] == [{"job": "dcvpn:deploy", "artifacts": False}]
    for name, command in (("dcvpn:confirm", "confirm"), ("dcvpn:rollback", "rollback")):
        job = template[name]
        assert job["resource_group"] == group
        assert job["needs"] == [{"job": "dcvpn:validate", "artifacts": False}]
        assert job["script"] == [f'$DCVPN_CMD {command} -f "$DCVPN_FABRIC"']


def test_no_credentials_in_the_files_and_the_token_never_shown() -> None:
    for path in (TEMPLATE, PROJECT):
        variables = _load(path).get("variables", {})
        for secret in ("DCVPN_USERNAME", "DCVPN_PASSWORD", "DCVPN_SSH_KEY",
                       "DCVPN_GITLAB_TOKEN", "DCVPN_PKI_PASSPHRASE"):
            assert secret not in variables, f"{path.name} defines {secret}"
        text = path.read_text(encoding="utf-8")
        assert "set -x" not in text and "--verbose" not in text
    uses = [line.strip() for line in TEMPLATE.read_text(encoding="utf-8").splitlines()
            if "DCVPN_GITLAB_TOKEN" in line and not line.lstrip().startswith("#")]
    assert uses == ['if [ -z "${DCVPN_GITLAB_TOKEN:-}" ]; then',
                    "echo \"dcvpn: DCVPN_GITLAB_TOKEN is not set: no merge-request note (the "
                    "report is an artifact)\"",
                    "printf 'PRIVATE-TOKEN: %s\\n' \"$DCVPN_GITLAB_TOKEN\" > \"$auth\""]
    report = _load(TEMPLATE)["dcvpn:diff-report"]
    assert report["allow_failure"] == {"exit_codes": [75]}
    assert report["artifacts"]["when"] == "always"


# --- real runs with gitlab-ci-local ------------------------------------------------------------

def _gitlab_ci_local() -> str:
    local = os.environ.get("DCVPN_GITLAB_CI_LOCAL") or (str(GCL_LOCAL) if GCL_LOCAL.exists()
                                                        else None)
    if local is None:
        require_binary("gitlab-ci-local")  # fails in CI, skips elsewhere: `make gitlab-ci-local`
        local = str(shutil.which("gitlab-ci-local"))
    for program in ("node", "rsync", "git", "curl"):
        require_binary(program)
    version = subprocess.run([local, "--version"], capture_output=True, text=True,
                             timeout=60, check=False).stdout.strip()
    if version != GCL_VERSION:
        pytest.fail(f"{local} is gitlab-ci-local {version!r}, the tests need {GCL_VERSION} "
                    "(make gitlab-ci-local)")
    return local


def _git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", "-c", "user.name=dcvpn test", "-c", "user.email=test@invalid",
                           "-c", "commit.gpgsign=false", *argv], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def _clone_work_tree(dest: Path) -> str:
    """The working tree (committed or not) as a new repository: main holds the example fabric
    without its last site, branch `feature` adds it. Returns main's commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode()
    for rel in sorted(set(listed.split("\0")) - {""}):
        src = ROOT / rel
        if rel.startswith((".cache/", ".gitlab-ci-local/")) or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    fabric = dest / FABRIC
    full = fabric.read_text(encoding="utf-8")
    assert full.count(NEW_SITE) == 1, "the example fabric changed: update NEW_SITE"
    fabric.write_text(full[:full.index(NEW_SITE)], encoding="utf-8")
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "base")
    base = _git(dest, "rev-parse", "HEAD")
    _git(dest, "remote", "add", "origin", "https://gitlab.invalid/netops/fabric.git")
    _git(dest, "update-ref", "refs/remotes/origin/main", base)
    _git(dest, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    _git(dest, "checkout", "-q", "-b", "feature")
    fabric.write_text(full, encoding="utf-8")
    _git(dest, "commit", "-q", "-a", "-m", "add sjc1")
    return base


@dataclass
class FakeGitLab:
    """The notes API of one merge request, on loopback."""

    notes: list[dict[str, Any]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # tokens answered with 401
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture(scope="module")
def gitlab_api() -> Iterator[FakeGitLab]:
    api = FakeGitLab()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            api.requests.append((self.command, self.path, dict(self.headers.items()), body))

        def _answer(self, payload: object, status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._record()
            if self.headers.get("PRIVATE-TOKEN") in api.refused:
                self._answer({"message": "401 Unauthorized"}, 401)
            else:
                self._answer(api.notes)

        def do_POST(self) -> None:
            self._record()
            self._answer({"id": 1}, 201)

        def do_PUT(self) -> None:
            self._record()
            self._answer({"id": 1})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Run:
    repo: Path
    base: str
    token: str
    gcl: str
    home: Path
    result: subprocess.CompletedProcess[str]
    api_requests: tuple[tuple[str, str, dict[str, str], str], ...]  # made by this run

    def artifacts(self, pattern: str) -> list[Path]:
        """The files matching `pattern` in each job's artifacts (one folder per job)."""
        return sorted(p for job in (self.repo / ".gitlab-ci-local" / "artifacts").iterdir()
                      for p in job.glob(pattern))


def _gcl(run_in: Path, gcl: str, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DCVPN_", "CI_", "GITLAB_", "GCL_"))}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"  # the stand-in API is local
    override = ("CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_MERGE_REQUEST_DIFF_BASE_SHA,"
                "CI_API_V4_URL,CI_PROJECT_ID,CI_MERGE_REQUEST_IID")
    return subprocess.run(
        [gcl, "--home", str(home), "--force-shell-executor", "--shell-isolation",
         "--no-color", "--ignore-predefined-vars", override,
         "--variable", f"DCVPN_CMD={Path(sys.executable).parent / 'dcvpn'}", *argv],
        cwd=run_in, env=env, capture_output=True, text=True, timeout=300, check=False)


def _merge_request(base: str, api: str, token: str) -> list[str]:
    return ["--variable", "CI_PIPELINE_SOURCE=merge_request_event",
            "--unset-variable", "CI_COMMIT_BRANCH",
            "--variable", f"CI_MERGE_REQUEST_DIFF_BASE_SHA={base}",
            "--variable", f"CI_API_V4_URL={api}", "--variable", "CI_PROJECT_ID=42",
            "--variable", "CI_MERGE_REQUEST_IID=7", "--variable", f"DCVPN_GITLAB_TOKEN={token}"]


@pytest.fixture(scope="module")
def mr_run(tmp_path_factory: pytest.TempPathFactory, gitlab_api: FakeGitLab) -> Run:
    gcl = _gitlab_ci_local()
    if not (Path(sys.executable).parent / "dcvpn").is_file():
        pytest.fail(f"no dcvpn beside {sys.executable}: install the project (make install-dev)")
    repo = tmp_path_factory.mktemp("fabric-repo")
    home = tmp_path_factory.mktemp("gcl-home")
    base = _clone_work_tree(repo)
    token = "glpat-" + secrets.token_hex(12)
    before = len(gitlab_api.requests)
    result = _gcl(repo, gcl, home, *_merge_request(base, gitlab_api.url, token))
    return Run(repo, base, token, gcl, home, result, tuple(gitlab_api.requests[before:]))


def _list(run: Run, *argv: str) -> dict[str, str]:
    res = _gcl(run.repo, run.gcl, run.home, "--list-json", *argv)
    assert res.returncode == 0, res.stdout + res.stderr
    return {j["name"]: j["when"] for j in json.loads(res.stdout[res.stdout.index("["):])}


def test_jobs_per_kind_of_pipeline(mr_run: Run) -> None:
    mr = _list(mr_run, *_merge_request(mr_run.base, "http://127.0.0.1:9/api/v4", "x"))
    active = {name for name, when in mr.items() if when != "never"}
    assert active == {"dcvpn:lint", "dcvpn:render: [1/2]", "dcvpn:render: [2/2]",
                      "dcvpn:diff: [1/2]", "dcvpn:diff: [2/2]", "dcvpn:diff-report"}
    feature = _list(mr_run, "--variable", "CI_PIPELINE_SOURCE=push")
    assert {n for n, w in feature.items() if w != "never"} == {
        "dcvpn:lint", "dcvpn:render: [1/2]", "dcvpn:render: [2/2]"}
    _git(mr_run.repo, "checkout", "-q", "main")
    try:
        default = _list(mr_run, "--variable", "CI_PIPELINE_SOURCE=push")
    finally:
        _git(mr_run.repo, "checkout", "-q", "feature")
    assert default["dcvpn:deploy"] == "manual"
    assert default["dcvpn:validate: [1/2]"] == default["dcvpn:confirm"] == "on_success"
    assert default["dcvpn:rollback"] == "on_failure"
    assert default["dcvpn:diff: [1/2]"] == "never"


def test_merge_request_pipeline_passes(mr_run: Run) -> None:
    out = mr_run.result.stdout + mr_run.result.stderr
    assert mr_run.result.returncode == 0, out[-5000:]
    for job in ("dcvpn:lint", "dcvpn:render: [1/2]", "dcvpn:render: [2/2]",
                "dcvpn:diff: [1/2]", "dcvpn:diff: [2/2]", "dcvpn:diff-report"):
        assert re.search(rf"PASS\s+{re.escape(job)}", out), job
    assert "Traceback" not in out


def test_render_artifacts_are_the_render_split_in_shards(mr_run: Run, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    from pipelines.cli import main
    expected = tmp_path / "render"
    assert main(["render", "-f", str(mr_run.repo / FABRIC), "-o", str(expected)]) == 0
    capsys.readouterr()
    compiled = compile_fabric(load_fabric(mr_run.repo / FABRIC).fabric)
    platforms = {gw.name: str(gw.platform) for _, gw in compiled.gateways()}
    folders = mr_run.artifacts("out/render")
    assert len(folders) == 2
    parts = [{p.name for p in f.iterdir()} for f in folders]
    assert sorted(map(sorted, parts)) == sorted(shard(platforms, i, 2) for i in (1, 2))
    for folder, part in zip(folders, parts, strict=True):
        for gw in part:
            files = {p.name: p.read_bytes() for p in (folder / gw).iterdir()}
            assert set(files) == {p.name for p in (expected / gw).iterdir()}, gw
            assert FILES[platforms[gw]] <= set(files), gw
            for name, data in files.items():
                assert data == (expected / gw / name).read_bytes(), f"{gw}/{name}"


def test_diff_report_covers_the_merge_request(mr_run: Run, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli import main
    base_fabric = tmp_path / "base.yaml"
    base_fabric.write_text(_git(mr_run.repo, "show", f"{mr_run.base}:{FABRIC}") + "\n",
                           encoding="utf-8")
    assert main(["render", "-f", str(base_fabric), "-o", str(tmp_path / "old")]) == 0
    capsys.readouterr()
    compiled = compile_fabric(load_fabric(mr_run.repo / FABRIC).fabric)
    changed = sorted(d.gateway for d in offline_diff(compiled, tmp_path / "old") if d.changed)
    assert "sjc1-gw1" in changed

    shards = mr_run.artifacts("out/diff/diff-*.md")
    assert sorted(p.name for p in shards) == ["diff-1.md", "diff-2.md"]
    (report,) = mr_run.artifacts("out/diff/diff.md")
    merged = report.read_text(encoding="utf-8")
    assert merged.startswith("<!-- dcvpn-diff:acme-example -->\n# dcvpn diff of "
                             f"`{FABRIC}`")
    rows = re.findall(r"^\| `([^`]+)` \|", merged, flags=re.MULTILINE)
    assert sorted(rows) == changed  # both shards, each gateway once
    section = merged[merged.index("### `iad1-gw1`"):]
    assert "- **tunnel iad1-sjc1-p0**: new tunnel" in section.split("### `", 2)[1]
    assert "```diff" in merged


def test_note_is_posted_with_the_token_which_is_never_shown(mr_run: Run) -> None:
    assert "dcvpn: diff posted to merge request !7 (new note)" in mr_run.result.stdout
    posts = [r for r in mr_run.api_requests if r[0] == "POST"]
    assert len(posts) == 1
    _, path, headers, body = posts[0]
    assert path == "/api/v4/projects/42/merge_requests/7/notes"
    assert headers["PRIVATE-TOKEN"] == mr_run.token
    (report,) = mr_run.artifacts("out/diff/diff.md")
    assert parse_qs(body)["body"] == [report.read_text(encoding="utf-8")]
    gets = [r for r in mr_run.api_requests if r[0] == "GET"]
    assert [urlsplit(r[1]).path for r in gets] == ["/api/v4/projects/42/merge_requests/7/notes"]
    assert mr_run.token not in mr_run.result.stdout + mr_run.result.stderr
    state = mr_run.repo / ".gitlab-ci-local"
    for f in [*(state / "output").rglob("*"), *(state / "artifacts").rglob("*")]:
        if f.is_file():
            assert mr_run.token.encode() not in f.read_bytes(), f


def test_note_is_updated_on_the_next_push(mr_run: Run, gitlab_api: FakeGitLab) -> None:
    gitlab_api.notes[:] = [{"id": 5, "body": "looks good"},
                           {"id": 99, "body": "<!-- dcvpn-diff:acme-example -->\nold diff"}]
    before = len(gitlab_api.requests)
    res = _gcl(mr_run.repo, mr_run.gcl, mr_run.home,
               *_merge_request(mr_run.base, gitlab_api.url, mr_run.token), "dcvpn:diff-report")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "dcvpn: diff posted to merge request !7 (updated note)" in res.stdout
    methods = [(r[0], urlsplit(r[1]).path) for r in gitlab_api.requests[before:]]
    assert methods == [("GET", "/api/v4/projects/42/merge_requests/7/notes"),
                       ("PUT", "/api/v4/projects/42/merge_requests/7/notes/99")]


def test_deploy_refuses_outside_the_change_window(mr_run: Run) -> None:
    _git(mr_run.repo, "checkout", "-q", "main")
    try:
        res = _gcl(mr_run.repo, mr_run.gcl, mr_run.home, "--variable",
                   "CI_PIPELINE_SOURCE=push", "--manual", "dcvpn:deploy", "dcvpn:deploy")
    finally:
        _git(mr_run.repo, "checkout", "-q", "feature")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "deploy refused: the change window is 'never' (change freeze)" in out
    assert "$ $DCVPN_CMD deploy" not in out  # the guard stopped the job before the deploy


def test_a_refused_token_is_a_warning_not_a_failed_pipeline(mr_run: Run,
                                                            gitlab_api: FakeGitLab) -> None:
    expired = "glpat-" + secrets.token_hex(12)
    gitlab_api.refused.add(expired)
    before = len(gitlab_api.requests)
    res = _gcl(mr_run.repo, mr_run.gcl, mr_run.home,
               *_merge_request(mr_run.base, gitlab_api.url, expired), "dcvpn:diff-report")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "could not post the diff to merge request !7" in out
    assert re.search(r"WARN\s+dcvpn:diff-report", out), out[-2000:]
    assert [r[0] for r in gitlab_api.requests[before:]] == ["GET"]
    assert expired not in out


def test_diff_against_a_base_that_does_not_render(mr_run: Run, gitlab_api: FakeGitLab) -> None:
    fabric = mr_run.repo / FABRIC
    current = fabric.read_text(encoding="utf-8")
    _git(mr_run.repo, "checkout", "-q", "-b", "broken", mr_run.base)
    try:
        base_text = fabric.read_text(encoding="utf-8")
        assert "    id: 2\n" in base_text
        fabric.write_text(base_text.replace("    id: 2\n", "    id: 1\n"), encoding="utf-8")
        _git(mr_run.repo, "commit", "-q", "-a", "-m", "duplicate site id")
        broken = _git(mr_run.repo, "rev-parse", "HEAD")
    finally:
        _git(mr_run.repo, "checkout", "-q", "feature")
    assert fabric.read_text(encoding="utf-8") == current
    res = _gcl(mr_run.repo, mr_run.gcl, mr_run.home, "--state-dir", ".gcl-broken",
               *_merge_request(broken, gitlab_api.url, ""), "dcvpn:diff")
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    note = (f"> The model at {broken} does not render (see the job log): compared with "
            "nothing.\n\n## dcvpn diff: acme\n")
    reports = sorted((mr_run.repo / ".gcl-broken" / "artifacts").glob("*/out/diff/diff-*.md"))
    assert len(reports) == 2
    names = compile_fabric(load_fabric(fabric).fabric).gateways()
    rows: list[str] = []
    for report in reports:
        text = report.read_text(encoding="utf-8")
        assert text.startswith(note), text[:300]
        rows += re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted(gw.name for _, gw in names)  # every gateway is new
    assert "DCV201" in res.stdout + res.stderr  # the reason is in the job log
