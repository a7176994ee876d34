"""Failures someone sees: every scheduled run records its outcome beside the register, `schedule
status` shows the runs and exits 1 while the last failed or one that was due did not run, and
every interactive command prints one line on stderr until a run succeeds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

WARNING = "自动日报"


@pytest.fixture
def office(tmp_path, monkeypatch, cli):
    """A register, reports going to tmp_path/reports, Chinese messages, a crontab file."""
    monkeypatch.setenv("COMMCARE_LANG", "zh")
    monkeypatch.setenv("COMMCARE_CRONTAB", str(tmp_path / "crontab"))
    monkeypatch.setenv("COMMCARE_NOW", "2026-05-08T10:00:00+08:00")
    assert cli("init").exit_code == 0
    assert cli("staff", "add", "王秀英").exit_code == 0
    return tmp_path / "reports"


def at(monkeypatch, moment: str) -> None:
    monkeypatch.setenv("COMMCARE_NOW", moment)


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if WARNING in line or "scheduled report" in line]


def records(db) -> list[dict]:
    path = db.with_name(db.name + ".schedule.jsonl")
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_a_run_on_a_broken_register_is_recorded_and_said_until_one_succeeds(office, cli, monkeypatch, tmp_path):
    db = tmp_path / "commcare.db"
    db.write_text("这不是数据库\n" * 200, encoding="utf-8")  # the register replaced by something else
    at(monkeypatch, "2026-05-08T20:00:02+08:00")
    run = cli("schedule", "run", "--at", "20:00", "--dir", office)
    assert run.exit_code == 3 and run.stderr.count("\n") == 1 and warnings(run) == []
    [record] = [r for r in records(db) if r["kind"] == "run"]
    assert record["exit"] == 3 and record["file"] is None and record["slot"] == "2026-05-08T20:00:00+08:00"
    assert record["message"] and run.stderr == f"commcare: {record['message']}\n"
    assert oct(db.with_name("commcare.db.schedule.jsonl").stat().st_mode & 0o777) == "0o600"

    at(monkeypatch, "2026-05-09T08:30:00+08:00")
    status = cli("schedule", "status")
    assert status.exit_code == 1 and "退出码 3" in status.stdout and record["message"] in status.stdout
    assert warnings(status) == []  # status says it on stdout, once
    db.unlink()
    assert cli("init").exit_code == 0
    listed = cli("resident", "list")
    assert listed.exit_code == 0
    assert warnings(listed) == [listed.stderr.strip()] and listed.stderr.count("\n") == 1
    assert listed.stderr.startswith("commcare: 昨天 20:00 的自动日报没有生成（退出码 3：")
    assert warnings(cli("resident", "list", "--help")) == []

    fixed = cli("schedule", "run", "--dir", office)  # by hand: no --at, runs now
    assert fixed.exit_code == 0 and (office / "2026-05-09.md").exists()
    assert cli("resident", "list").stderr == ""
    assert cli("schedule", "status").exit_code == 0


def test_a_run_that_did_not_happen_is_missed_after_its_time(office, cli, monkeypatch):
    assert cli("schedule", "install", "--at", "20:00", "--dir", office).exit_code == 0
    at(monkeypatch, "2026-05-08T20:10:00+08:00")  # due, and may still be running
    assert cli("schedule", "status").exit_code == 0 and warnings(cli("resident", "list")) == []
    at(monkeypatch, "2026-05-08T20:30:00+08:00")
    status = cli("schedule", "status", "-f", "json")
    assert status.exit_code == 1
    assert json.loads(status.stdout)["problem"] == {
        "problem": "missed",
        "slot": "2026-05-08T20:00:00+08:00",
        "message": "",
    }
    assert warnings(cli("resident", "list")) == [
        ("commcare: 今天 20:00 的自动日报没有运行（cron 没有执行定时任务）；运行 commcare schedule status 查看")
    ]
    at(monkeypatch, "2026-05-09T08:00:00+08:00")
    monkeypatch.setenv("COMMCARE_LANG", "en")
    assert warnings(cli("resident", "list")) == [
        (
            "commcare: the scheduled report of yesterday at 20:00 did not run (cron did not start it); "
            "see commcare schedule status"
        )
    ]
    late = cli("schedule", "run", "--at", "20:00", "--dir", office)  # 12 hours late: not that evening's
    assert late.exit_code == 0 and late.stdout == "" and not office.joinpath("2026-05-08.md").exists()
    assert cli("schedule", "status").exit_code == 1
    assert cli("schedule", "run", "--dir", office).exit_code == 0
    assert warnings(cli("resident", "list")) == [] and cli("schedule", "status").exit_code == 0
    at(monkeypatch, "2026-05-10T21:00:00+08:00")
    assert cli("schedule", "status").exit_code == 1
    assert cli("schedule", "remove").exit_code == 0  # no entry: nothing is due any more
    assert cli("schedule", "status").exit_code == 0 and warnings(cli("resident", "list")) == []


def test_a_run_on_time_clears_a_miss_and_the_table_shows_it(office, cli, monkeypatch):
    assert cli("schedule", "install", "--at", "20:00", "--dir", office).exit_code == 0
    at(monkeypatch, "2026-05-08T20:00:01+08:00")
    ran = cli("schedule", "run", "--at", "20:00", "--dir", office)
    assert ran.exit_code == 0 and ran.stdout.startswith("2026-05-08 20:00 已生成 ")
    at(monkeypatch, "2026-05-09T19:00:00+08:00")
    status = cli("schedule", "status")
    assert status.exit_code == 0
    assert "定时汇总：每天 20:00（Asia/Shanghai）" in status.stdout
    assert "2026-05-08 20:00" in status.stdout and "正常" in status.stdout


def test_a_broken_config_is_recorded_beside_the_register(office, cli, monkeypatch, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("timezone = [", encoding="utf-8")
    monkeypatch.setenv("COMMCARE_CONFIG", str(bad))
    run = cli("schedule", "run", "--dir", office)
    assert run.exit_code == 2
    [record] = [r for r in records(tmp_path / "commcare.db") if r["kind"] == "run"]
    assert record["exit"] == 2 and "bad.toml" in record["message"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_undelivered_report_is_written_recorded_and_said(office, cli, monkeypatch, tmp_path):
    (tmp_path / "commcare.toml").write_text("[notify]\nbackoff = 0.01\n", encoding="utf-8")
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    at(monkeypatch, "2026-05-08T20:00:02+08:00")
    run = cli("schedule", "run", "--at", "20:00", "--dir", office, "--notify", url)
    assert run.exit_code == 1 and (office / "2026-05-08.md").exists()
    assert "2026-05-08.md" in run.stderr and "试了 3 次" in run.stderr
    record = records(tmp_path / "commcare.db")[-1]
    assert record["exit"] == 1 and record["file"] == str(office / "2026-05-08.md")
    assert record["delivery"] == [
        {"to": url, "kind": "webhook", "ok": False, "tries": 3, "error": "Connection refused"}
    ]
    at(monkeypatch, "2026-05-08T21:00:00+08:00")
    status = cli("schedule", "status")
    assert status.exit_code == 1 and "网址（JSON）✗3" in status.stdout
    assert warnings(cli("resident", "list")) == [
        f"commcare: 今天 20:00 的自动日报已生成，但没有送达（{record['message']}）；运行 commcare schedule status 查看"
    ]


def test_the_warning_costs_no_database_library(office, monkeypatch, tmp_path):
    """The check every command makes reads the small file: SQLAlchemy is not imported for it."""
    db = tmp_path / "commcare.db"
    db.with_name("commcare.db.schedule.jsonl").write_text(
        json.dumps(
            {
                "kind": "run",
                "time": "2026-05-08T20:00:01+08:00",
                "exit": 3,
                "message": "坏了",
                "slot": "2026-05-08T20:00:00+08:00",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    code = (
        "import sys\nfrom commcare.commands import common\ncommon.start().settings\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\n"
    )
    env = {**os.environ, "COMMCARE_NOW": "2026-05-09T08:00:00+08:00"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stderr == "commcare: 昨天 20:00 的自动日报没有生成（退出码 3：坏了）；运行 commcare schedule status 查看\n"
    )


def test_the_record_stays_small(tmp_path):
    from commcare.schedule import history

    path = tmp_path / "r.db.schedule.jsonl"
    for n in range(2000):
        history.append(
            path, {"kind": "run", "time": "2026-05-08T20:00:00+08:00", "exit": 0, "n": n, "message": "x" * 200}
        )
    kept = history.read(path)
    assert len(kept) <= history.KEEP + 300 and kept[-1]["n"] == 1999
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_every_backend_records_its_runs(db_url, cli, tmp_path, monkeypatch):
    """A SQLite register keeps the record beside its file; a server's, in the user data dir
    (named by a hash of the URL without its password)."""
    from commcare.schedule import history

    monkeypatch.setenv("COMMCARE_LANG", "zh")
    assert cli("staff", "add", "王秀英").exit_code == 0
    run = cli("schedule", "run", "--dir", tmp_path / "reports")
    assert run.exit_code == 0, run.stderr
    path = history.path_for(db_url)
    if "://" in db_url:
        assert path.parent == tmp_path / "xdg-data" / "commcare" and path.name.startswith("schedule-")
    else:
        assert path == tmp_path / "register.db.schedule.jsonl"
    status = json.loads(cli("schedule", "status", "-f", "json").stdout)
    assert [r["exit"] for r in status["runs"]] == [0] and status["record"] == str(path)


def test_an_evening_whose_register_is_not_there_is_a_failed_run_not_an_empty_report(office, cli, monkeypatch, tmp_path):
    """The register's drive not mounted, or the file moved: the run exits 3 naming the path
    and ``init``, records that exit and message (not an internal error), writes no report
    and makes no register; status then fails."""
    db = tmp_path / "commcare.db"
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"commcare.db{suffix}").unlink(missing_ok=True)
    at(monkeypatch, "2026-05-08T20:00:02+08:00")
    run = cli("schedule", "run", "--at", "20:00", "--dir", office)
    assert run.exit_code == 3 and "commcare init" in run.stderr and str(db) in run.stderr
    [record] = [r for r in records(db) if r["kind"] == "run"]
    assert record["exit"] == 3 and record["file"] is None and "commcare init" in record["message"]
    assert not db.exists() and not office.exists()
    at(monkeypatch, "2026-05-09T08:30:00+08:00")
    assert cli("schedule", "status").exit_code == 1
