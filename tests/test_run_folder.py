"""The run folder's owner: its lock, what --overwrite may delete, and its files' formats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cgan_mnist import run_folder
from cgan_mnist.errors import UserError
from cgan_mnist.run_folder import RunLock, RunPaths


def _hold_lock(folder):
    """A real second process that takes the run's lock and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from cgan_mnist.run_folder import RunLock
        RunLock({str(folder)!r}).acquire()
        print("locked", flush=True)
        time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path, capsys,
                                                                          synthetic_npz):
    from cgan_mnist.cli import train_main

    holder = _hold_lock(tmp_path / "run")
    try:
        with pytest.raises(UserError, match=rf"in use by another cgan-train \(pid {holder.pid}\)"):
            RunLock(tmp_path / "run").acquire()
        capsys.readouterr()
        code = train_main(["--outdir", str(tmp_path / "run"), "--dataset", str(synthetic_npz),
                           "--epochs", "1", "--batch-size", "32"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and f"(pid {holder.pid})" in err[0]
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(tmp_path / "run"):  # the kernel released it with the process
        assert (tmp_path / "run" / ".lock").read_text().strip() == str(os.getpid())


def test_the_lock_is_released_on_exit_and_can_be_taken_again(tmp_path):
    lock = RunLock(tmp_path).acquire()
    with pytest.raises(UserError):
        RunLock(tmp_path).acquire()
    lock.release()
    RunLock(tmp_path).acquire().release()


def _fake_run(root):
    paths = RunPaths(root)
    for path in (paths.config, paths.history, paths.generator, paths.log_file, paths.quality,
                 paths.losses_plot, paths.epoch_grid(1), paths.epoch_grid(2), paths.progress_gif,
                 paths.checkpoints / "ckpt-8.index"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return paths


def test_remove_run_deletes_only_what_a_run_writes(tmp_path):
    paths = _fake_run(tmp_path / "run")
    mine = [tmp_path / "run" / "notes.txt", tmp_path / "run" / "generated" / "digit_7.png",
            tmp_path / "run" / "plots" / "my_plot.png"]
    for path in mine:
        path.write_text("keep me")
    run_folder.remove_run(paths)
    assert not paths.holds_run() and not paths.generator.exists() and not paths.epoch_grids()
    assert all(path.read_text() == "keep me" for path in mine)


def test_remove_run_never_follows_a_link_out_of_the_run_folder(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "epoch_0001.png").write_text("not the run's")
    (outside / "checkpoints").mkdir()
    (outside / "checkpoints" / "ckpt-1.index").write_text("not the run's")
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    paths.generated.symlink_to(outside)
    paths.checkpoints.symlink_to(outside / "checkpoints")
    paths.config.write_text("{}")
    run_folder.remove_run(paths)
    assert (outside / "epoch_0001.png").read_text() == "not the run's"
    assert (outside / "checkpoints" / "ckpt-1.index").read_text() == "not the run's"
    assert not paths.config.exists() and not paths.checkpoints.is_symlink()


@pytest.mark.parametrize("text, problem", [
    ("{not json", "damaged"),
    ("[1, 2]", "not a cgan-train config"),
    ('{"epochs": NaN', "damaged"),
])
def test_a_damaged_config_is_one_line_that_names_it(tmp_path, text, problem):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UserError, match=problem) as err:
        run_folder.read_config(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value) and "\n" not in str(err.value)
    assert run_folder.read_config(tmp_path / "nothing here") is None


def test_what_a_run_recorded_is_read_defensively():
    stored = {"run": {"data": {"class_names": ["a", "b"], "path": "/d/mnist.npz",
                               "fingerprint": "abc"}}}
    assert run_folder.class_names(stored) == ("a", "b")
    assert run_folder.recorded_data(stored) == ("/d/mnist.npz", "abc")
    for broken in (None, {}, {"run": []}, {"run": {"data": {"class_names": [1, 2], "path": 3}}}):
        assert run_folder.class_names(broken) is None
        assert run_folder.recorded_data(broken) == (None, None)


def test_history_round_trip_and_a_damaged_file(tmp_path):
    rows = [{"step": s, "epoch": 1, "d_loss": 1.5, "g_loss": 0.25, "d_real": 0.5, "d_fake": 0.5}
            for s in (1, 2)]
    run_folder.write_history(tmp_path / "h.csv", rows)
    assert run_folder.read_history(tmp_path / "h.csv") == rows
    (tmp_path / "h.csv").write_text("step,epoch,d_loss\n1,1,abc\n")
    with pytest.raises(UserError, match="h.csv is damaged"):
        run_folder.read_history(tmp_path / "h.csv")


def test_check_outdir_refuses_a_used_folder_a_file_and_a_resume_without_checkpoints(tmp_path):
    paths = RunPaths(tmp_path / "run")
    run_folder.check_outdir(paths, resume=False, overwrite=False)  # a new folder is fine
    paths.root.mkdir()
    paths.config.write_text(json.dumps({"epochs": 1}))
    with pytest.raises(UserError, match="already holds a run"):
        run_folder.check_outdir(paths, resume=False, overwrite=False)
    with pytest.raises(UserError, match="no checkpoints"):
        run_folder.check_outdir(paths, resume=True, overwrite=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        run_folder.check_outdir(RunPaths(tmp_path / "file"), resume=False, overwrite=False)
