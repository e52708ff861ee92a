import hashlib
import zipfile

import pytest

from monodepth2_ros.cli.main import main
from monodepth2_ros.errors import CheckpointError, ConfigError
from monodepth2_ros.inference.weights import (
    ACCEPT_LICENSE_ENV,
    OFFICIAL_RELEASES,
    OFFICIAL_WEIGHTS_LICENSE_URL,
    fetch_weights,
    license_accepted,
)
from monodepth2_ros.model.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from monodepth2_ros.model.networks import DepthNet, PoseNet


@pytest.fixture(scope="module")
def release_zip(tmp_path_factory):
    """A zip laid out like an official release: a folder holding the four .pth files (made once: it is slow)."""
    folder = tmp_path_factory.mktemp("release")
    save_checkpoint(folder / "mono_640x192", DepthNet(18), PoseNet(18), CheckpointInfo())
    archive = folder / "mono_640x192.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (folder / "mono_640x192").iterdir():
            zipped.write(path, f"mono_640x192/{path.name}")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_fetch_downloads_verifies_and_unzips_into_a_loadable_folder(tmp_path, release_zip, monkeypatch):
    monkeypatch.delenv(ACCEPT_LICENSE_ENV, raising=False)
    archive, md5 = release_zip
    status = main(["fetch-weights", "mono_640x192", "--dest", str(tmp_path / "models" / "mono"),
                   "--url", archive.as_uri(), "--md5", md5, "--accept-license"])
    assert status == 0
    assert load_checkpoint(tmp_path / "models" / "mono").info.has_pose
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["mono"]  # no temporaries left


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, release_zip):
    archive, _ = release_zip
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        fetch_weights("mono_640x192", tmp_path / "models" / "mono", url=archive.as_uri(), md5="0" * 32)
    assert list((tmp_path / "models").iterdir()) == []


def test_existing_destination_needs_force(tmp_path, release_zip):
    archive, md5 = release_zip
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="use --force"):
        fetch_weights("mono_640x192", dest, url=archive.as_uri(), md5=md5)
    assert (dest / "keep.txt").read_text() == "mine"
    fetch_weights("mono_640x192", dest, url=archive.as_uri(), md5=md5, force=True)
    assert (dest / "encoder.pth").is_file()


def test_unreachable_server_fails_fast_with_a_clear_message(tmp_path):
    with pytest.raises(CheckpointError, match="cannot download .*offline"):
        fetch_weights("mono_640x192", tmp_path / "d", url="http://127.0.0.1:9/mono_640x192.zip")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text("hello")
    with pytest.raises(CheckpointError, match="not a zip archive"):
        fetch_weights("mono_640x192", tmp_path / "d", url=fake.as_uri(), md5=hashlib.md5(b"hello").hexdigest())


def test_release_table_uses_the_published_names_and_urls():
    assert OFFICIAL_RELEASES["mono+stereo_640x192"].url.endswith("/monodepth2/mono%2Bstereo_640x192.zip")
    assert all(len(model.md5) == 32 for model in OFFICIAL_RELEASES.values())


def test_without_accepting_the_licence_it_prints_the_licence_and_downloads_nothing(tmp_path, release_zip, monkeypatch, capsys):
    monkeypatch.delenv(ACCEPT_LICENSE_ENV, raising=False)
    archive, md5 = release_zip
    dest = tmp_path / "models" / "mono"
    status = main(["fetch-weights", "mono_640x192", "--dest", str(dest), "--url", archive.as_uri(), "--md5", md5])
    out, err = capsys.readouterr()
    assert status == 1
    assert "non-commercial" in out and OFFICIAL_WEIGHTS_LICENSE_URL in out
    assert "licence was not accepted" in err and "--accept-license" in err and ACCEPT_LICENSE_ENV in err
    assert not dest.exists() and not (tmp_path / "models").exists()


def test_the_environment_variable_accepts_the_licence(tmp_path, release_zip, monkeypatch, capsys):
    archive, md5 = release_zip
    monkeypatch.setenv(ACCEPT_LICENSE_ENV, "1")
    dest = tmp_path / "mono"
    assert main(["fetch-weights", "mono_640x192", "--dest", str(dest), "--url", archive.as_uri(), "--md5", md5]) == 0
    assert "non-commercial" in capsys.readouterr().out
    assert (dest / "encoder.pth").is_file()


def test_licence_acceptance_reads_the_flag_and_the_variable():
    assert license_accepted(True, {})
    assert license_accepted(False, {ACCEPT_LICENSE_ENV: "yes"})
    assert not license_accepted(False, {ACCEPT_LICENSE_ENV: "0"})
    assert not license_accepted(False, {})
