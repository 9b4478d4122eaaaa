"""A DVC remote: what one clone pushes, a fresh clone pulls, and then nothing needs reproducing.

The remote's address is committed in ``.dvc/config``, as a team shares it; moto's endpoint and
credentials stay out of git (``--local`` and the environment), as a real S3 secret would.
"""

from pathlib import Path

import pytest

from tests.conftest import copy_repo, run
from tests.pipeline.test_dvc import dvc, ran, set_param
from tests.services import moto_s3

pytestmark = pytest.mark.slow


def cached_outputs(repo: Path) -> dict[str, bytes]:
    """dvc.yaml's cached outputs, which only a remote carries to another machine (git has the rest)."""
    files = [repo / "models/model.npz", *sorted((repo / "data/prepared").rglob("*"))]
    return {str(f.relative_to(repo)): f.read_bytes() for f in files if f.is_file()}


def git(repo: Path, *args: str) -> str:
    res = run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], repo)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A copy of the project whose pipeline, shrunk to 2 epochs, is reproduced and committed once."""
    repo = copy_repo(tmp_path_factory.mktemp("origin") / "repo")
    set_param(repo, "training", "epochs", 2)  # seconds rather than a minute
    set_param(repo, "tracking", "enabled", False)  # no stage's param: MLflow plays no part in a remote
    dvc(repo, "repro")
    git(repo, "commit", "-qam", "the small pipeline, reproduced")
    return repo


def share(origin: Path, name: str, url: str, local: dict, env: dict | None = None) -> None:
    """Make ``name`` the default remote, commit its address, set ``local`` beside it, push the outputs."""
    dvc(origin, "remote", "add", "-d", name, url)
    git(origin, "commit", "-qm", f"DVC remote {name}", ".dvc/config")
    for key, value in local.items():
        dvc(origin, "remote", "modify", "--local", name, key, value)
    assert "files pushed" in dvc(origin, "push", env=env).stdout


def pull_into_fresh_clone(origin: Path, clone: Path, name: str, local: dict, env: dict | None = None) -> None:
    """``git clone`` + ``dvc pull``: the outputs are the pushed ones, and the pipeline is up to date."""
    git(origin.parent, "clone", "-q", str(origin), str(clone))
    assert not (clone / "models/model.npz").exists()  # a clone has no outputs and no cache
    for key, value in local.items():
        dvc(clone, "remote", "modify", "--local", name, key, value)
    dvc(clone, "pull", env=env)
    assert cached_outputs(clone) == cached_outputs(origin)

    repro = dvc(clone, "repro").stdout
    assert ran(repro) == [] and "Data and pipelines are up to date." in repro, repro
    assert dvc(clone, "metrics", "diff").stdout == ""
    assert "Data and pipelines are up to date." in dvc(clone, "status").stdout
    assert git(clone, "status", "--porcelain") == ""  # the --local settings stay out of git


def test_a_local_directory_remote(origin, tmp_path):
    share(origin, "disk", str(tmp_path / "shared-disk"), local={})
    pull_into_fresh_clone(origin, tmp_path / "clone", "disk", local={})


def test_an_s3_remote(origin, tmp_path):
    # the bucket's URL is committed; moto's endpoint (a MinIO's would be committed too) and the
    # credentials (from the environment) are not
    with moto_s3(tmp_path / "moto.log") as (endpoint, env):
        share(origin, "s3", "s3://mlplab/dvc", local={"endpointurl": endpoint}, env=env)
        pull_into_fresh_clone(origin, tmp_path / "clone", "s3", local={"endpointurl": endpoint}, env=env)
