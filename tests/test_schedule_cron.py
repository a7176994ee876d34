"""The scheduled summary as cron runs it: the installed line, run by /bin/sh in cron's bare
environment (and, in the slow test, by Debian's cron daemon itself), writes the dated Chinese
report of the day in COMMCARE_TZ and records the run."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

COMMCARE = Path(sys.executable).with_name("commcare")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def commcare(*args, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """The installed console script, as a person runs it."""
    result = subprocess.run(
        [str(COMMCARE), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def office(tmp_path):
    """A register in a folder whose name has a space and Chinese characters, a named community,
    one staff member; no LANG (the scheduled report must still be Chinese), the machine in UTC."""
    home = tmp_path / "居委会 办公室"
    home.mkdir()
    env = {
        "PATH": f"{COMMCARE.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TZ": "UTC",
        "COMMCARE_DB": str(home / "花名册.db"),
        "COMMCARE_CONFIG": str(home / "commcare.toml"),
        "COMMCARE_COMMUNITY": "阳光 社区",
        "COMMCARE_CRONTAB": str(tmp_path / "crontab"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }
    commcare("init", env=env)
    commcare("staff", "add", "王秀英", env=env)
    return home, env


def installed_line(tab: Path) -> tuple[str, str]:
    """(the five time fields, the command) of the one commcare line in a user crontab."""
    lines = [x for x in tab.read_text(encoding="utf-8").splitlines() if "commcare-summary" in x]
    assert len(lines) == 1, lines
    fields = lines[0].split(" ", 5)
    return " ".join(fields[:5]), fields[5]


def test_the_line_pins_the_register_and_holds_no_percent(office, tmp_path):
    home, env = office
    reports = home / "日报 2026"
    commcare("schedule", "install", "--at", "20:00", "--dir", reports, env=env)
    spec, command = installed_line(tmp_path / "crontab")
    assert spec == "0 12 * * *"  # 20:00 in Shanghai on a machine kept in UTC
    assert "%" not in command and "date" not in command and "\\" not in command
    words = shlex.split(command)
    pinned = dict(w.split("=", 1) for w in words if w.startswith("COMMCARE_"))
    assert pinned == {
        "COMMCARE_DB": env["COMMCARE_DB"],
        "COMMCARE_CONFIG": env["COMMCARE_CONFIG"],
        "COMMCARE_TZ": "Asia/Shanghai",
        "COMMCARE_LANG": "zh",
        "COMMCARE_COMMUNITY": "阳光 社区",
    }
    assert words[words.index("--dir") + 1] == str(reports)
    assert f">>{reports / 'commcare-cron.log'}" in " ".join(words)
    assert oct((reports / "commcare-cron.log").stat().st_mode & 0o777) == "0o600"
    shown = commcare("schedule", "show", env=env).stdout
    assert shown.strip() == next(
        x for x in (tmp_path / "crontab").read_text(encoding="utf-8").splitlines() if "commcare-summary" in x
    )


def test_installing_twice_keeps_one_line_and_a_percent_is_refused(office, tmp_path):
    home, env = office
    for at in ("20:00", "21:15"):
        commcare("schedule", "install", "--at", at, "--dir", home / "reports", env=env)
    spec, _ = installed_line(tmp_path / "crontab")
    assert spec == "15 13 * * *"
    refused = commcare("schedule", "install", "--dir", home / "100%", env=env, check=False)
    assert refused.returncode == 2 and "%" in refused.stderr and "Traceback" not in refused.stderr
    assert installed_line(tmp_path / "crontab")[0] == "15 13 * * *"  # nothing changed


def test_an_english_locale_or_an_explicit_choice_is_pinned(office, tmp_path):
    home, env = office
    commcare("schedule", "install", "--dir", home, env={**env, "LANG": "en_US.UTF-8"})
    assert "COMMCARE_LANG=en" in installed_line(tmp_path / "crontab")[1]
    commcare("schedule", "install", "--dir", home, env={**env, "LANG": "C"})
    assert "COMMCARE_LANG=zh" in installed_line(tmp_path / "crontab")[1]
    commcare("--lang", "en", "schedule", "install", "--dir", home, env={**env, "LANG": "zh_CN.UTF-8"})
    assert "COMMCARE_LANG=en" in installed_line(tmp_path / "crontab")[1]


def as_cron_runs(command: str, home: Path, utc: str) -> subprocess.CompletedProcess:
    """``command`` as cron runs it: /bin/sh -c in an environment of SHELL, PATH and HOME alone,
    at the UTC moment ``utc`` (faketime), on a machine whose zone is UTC."""
    env = ["env", "-i", "SHELL=/bin/sh", "PATH=/usr/bin:/bin", f"HOME={home}", "TZ=UTC"]
    return subprocess.run(
        [*env, "faketime", utc, "sh", "-c", command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


needs_faketime = pytest.mark.skipif(
    shutil.which("faketime") is None, reason="faketime is not installed (Debian package faketime)"
)


@needs_faketime
def test_the_installed_line_run_as_cron_writes_the_shanghai_days_chinese_report(office, tmp_path):
    home, env = office
    reports = home / "日报"
    commcare("schedule", "install", "--at", "07:30", "--dir", reports, env=env)
    spec, command = installed_line(tmp_path / "crontab")
    assert spec == "30 23 * * *"  # 07:30 in Shanghai is 23:30 UTC the evening before
    ran = as_cron_runs(command, tmp_path, "2026-11-29 23:30:04")
    assert ran.returncode == 0 and ran.stdout == "" and ran.stderr == ""  # all of it went to the log
    assert sorted(p.name for p in reports.iterdir()) == ["2026-11-30.md", "commcare-cron.log"]
    report = (reports / "2026-11-30.md").read_text(encoding="utf-8")
    assert report.startswith("# 阳光 社区 工作日报 2026-11-30") and "新增求助" in report
    for name in ("2026-11-30.md", "commcare-cron.log"):
        assert oct((reports / name).stat().st_mode & 0o777) == "0o600"
    log = (reports / "commcare-cron.log").read_text(encoding="utf-8")
    assert log == f"2026-11-30 07:30 已生成 {reports / '2026-11-30.md'}\n"
    status = json.loads(
        commcare("schedule", "status", "-f", "json", env={**env, "COMMCARE_NOW": "2026-11-30T07:45:00+08:00"}).stdout
    )
    assert [(r["slot"], r["date"], r["exit"], r["file"]) for r in status["runs"]] == [
        ("2026-11-30T07:30:00+08:00", "2026-11-30", 0, str(reports / "2026-11-30.md"))
    ]
    assert status["problem"] is None


@needs_faketime
def test_the_line_does_nothing_at_another_hour_and_runs_once_per_evening(office, tmp_path):
    home, env = office
    reports = home / "日报"
    commcare("schedule", "install", "--at", "20:00", "--dir", reports, env=env)
    command = installed_line(tmp_path / "crontab")[1]
    assert as_cron_runs(command, tmp_path, "2026-11-29 09:00:03").returncode == 0  # 17:00 in Shanghai
    assert not (reports / "2026-11-29.md").exists()
    for _ in range(2):  # the second start (a clock put back, a line run twice) is the same evening's
        assert as_cron_runs(command, tmp_path, "2026-11-29 12:00:03").returncode == 0
    runs = json.loads(
        commcare("schedule", "status", "-f", "json", env={**env, "COMMCARE_NOW": "2026-11-29T20:30:00+08:00"}).stdout
    )["runs"]
    assert [r["date"] for r in runs] == ["2026-11-29"]
    assert (reports / "commcare-cron.log").read_text(encoding="utf-8").count("已生成") == 1


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("UTC", [(12, 0)]),
        ("Asia/Shanghai", [(20, 0)]),
        ("Europe/Berlin", [(13, 0), (14, 0)]),  # winter (CET) and summer (CEST)
        ("America/New_York", [(7, 0), (8, 0)]),
        ("Asia/Kolkata", [(17, 30)]),
    ],
)
def test_the_crontab_time_is_the_system_zones_for_every_day_of_the_year(system, expected):
    from commcare.schedule.cron import cron_times

    assert cron_times(20, 0, SHANGHAI, ZoneInfo(system), dt.date(2026, 5, 1)) == expected


def test_a_machine_with_summer_time_gets_both_hours_and_runs_at_the_right_one(office, tmp_path):
    from commcare.schedule.history import slot_to_run

    home, env = office
    line = commcare(
        "schedule", "install", "--at", "20:00", "--dir", home, "--print", env={**env, "TZ": "Europe/Berlin"}
    ).stdout
    assert line.startswith("0 13,14 * * * ")
    berlin = ZoneInfo("Europe/Berlin")
    summer_13 = dt.datetime(2026, 7, 1, 13, 0, 5, tzinfo=berlin)  # 19:00 in Shanghai
    assert slot_to_run("20:00", SHANGHAI, summer_13, []) is None
    summer_14 = dt.datetime(2026, 7, 1, 14, 0, 5, tzinfo=berlin)
    assert slot_to_run("20:00", SHANGHAI, summer_14, []) == dt.datetime(2026, 7, 1, 20, 0, tzinfo=SHANGHAI)
    winter_13 = dt.datetime(2026, 12, 1, 13, 0, 5, tzinfo=berlin)
    slot = slot_to_run("20:00", SHANGHAI, winter_13, [])
    assert slot == dt.datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI)
    done = [{"kind": "run", "time": winter_13.isoformat(), "slot": slot.isoformat()}]
    assert slot_to_run("20:00", SHANGHAI, winter_13 + dt.timedelta(hours=1), done) is None  # 14:00: done


def test_without_cron_install_names_the_package_and_print_still_works(office, tmp_path):
    home, env = office
    bare = {k: v for k, v in env.items() if k != "COMMCARE_CRONTAB"}
    bare["PATH"] = str(tmp_path / "empty-bin")  # no crontab(1) anywhere
    result = commcare("schedule", "install", "--dir", home, env=bare, check=False)
    assert result.returncode == 2, result.stderr
    assert "apt-get install cron" in result.stderr and result.stderr.count("\n") == 1
    assert "internal error" not in result.stderr and "OSError" not in result.stderr
    printed = commcare("schedule", "install", "--at", "20:00", "--dir", home, "--print", env=bare).stdout
    import getpass

    fields = printed.split(" ", 6)
    assert fields[:6] == ["0", "12", "*", "*", "*", getpass.getuser()]  # /etc/cron.d: the user field
    assert "schedule run --at 20:00" in printed and "%" not in printed and printed.count("\n") == 1


# --- a real cron daemon ---------------------------------------------------------------------


def _cron_pid() -> int | None:
    for pidfile in ("/run/crond.pid", "/var/run/crond.pid"):
        try:
            pid = int(Path(pidfile).read_text().strip())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z":
            return pid
    return None


def _why_no_cron_daemon() -> str | None:
    if shutil.which("cron") is None:
        return "no cron daemon here (Debian package cron)"
    if os.geteuid() != 0 or not os.access("/etc/cron.d", os.W_OK):
        return "the test writes /etc/cron.d and may start cron: it needs root"
    return None


@pytest.fixture
def cron_daemon():
    """Debian's cron, running (started here, and stopped after, if it was not)."""
    started = None
    if _cron_pid() is None:
        subprocess.run(["cron"], check=True, timeout=30)
        for _ in range(50):
            if (started := _cron_pid()) is not None:
                break
            time.sleep(0.1)
        assert started is not None, "cron did not start"
    yield
    if started is not None:
        os.kill(started, 15)


@pytest.mark.slow
@pytest.mark.skipif(_why_no_cron_daemon() is not None, reason=str(_why_no_cron_daemon()))
def test_a_real_cron_daemon_runs_the_entry_and_the_chinese_report_arrives(office, tmp_path, cron_daemon):
    home, env = office
    reports = home / "日报 目录"
    tab = Path(f"/etc/cron.d/commcare-test-{os.getpid()}")  # no dot in the name: cron skips those
    env = {**env, "COMMCARE_CRONTAB": str(tab)}
    now = dt.datetime.now(SHANGHAI)
    at = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=2)  # one whole minute ahead at least
    try:
        commcare("schedule", "install", "--at", at.strftime("%H:%M"), "--dir", reports, env=env)
        assert tab.read_text(encoding="utf-8").count("commcare-summary") == 1
        target = reports / f"{at.date().isoformat()}.md"
        deadline = at + dt.timedelta(seconds=90)
        while dt.datetime.now(SHANGHAI) < deadline and "已生成" not in _read(reports / "commcare-cron.log"):
            time.sleep(2)
        log = _read(reports / "commcare-cron.log")
        assert log == f"{at.strftime('%Y-%m-%d %H:%M')} 已生成 {target}\n", (log, tab.read_text(encoding="utf-8"))
    finally:
        tab.unlink(missing_ok=True)
    report = target.read_text(encoding="utf-8")
    assert report.startswith(f"# 阳光 社区 工作日报 {at.date().isoformat()}") and "新增求助" in report
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert oct((reports / "commcare-cron.log").stat().st_mode & 0o777) == "0o600"
    status = commcare("schedule", "status", "-f", "json", env=env)
    runs = json.loads(status.stdout)["runs"]
    assert [(r["slot"], r["exit"], r["file"]) for r in runs] == [(at.isoformat(), 0, str(target))]
    print(f"cron wrote {target.name}; log: {log.strip()}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
