"""Delivery of the evening figures to real local servers: an HTTP server standing in for each
group robot (企业微信, 钉钉, 飞书: each message checked against its documented format, and the
signatures recomputed as each service documents them) and any other URL, a real SMTP server
(aiosmtpd), servers that are down or failing, and no name, phone or ID number in any of it."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest


class Robot(BaseHTTPRequestHandler):
    """Answers as each robot does (企业微信/钉钉 ``errcode``, 飞书 ``code``) and keeps what it got.
    Paths starting /fail500 answer 500; /flaky answers 500 once, then 200; key=bad is refused."""

    def do_POST(self):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(
            {
                "path": parts.path,
                "query": dict(parse_qsl(parts.query)),
                "at": time.monotonic(),
                "type": self.headers["Content-Type"],
                "body": body,
            }
        )
        tries = sum(1 for s in self.server.seen if s["path"] == parts.path)
        if parts.path.startswith("/fail500") or (parts.path.startswith("/flaky") and tries == 1):
            return self._answer(500, b"busy")
        if parts.path.endswith("/cgi-bin/webhook/send") or parts.path.endswith("/robot/send"):
            bad = dict(parse_qsl(parts.query)).get("key") == "bad"
            reply = {"errcode": 93000, "errmsg": "invalid webhook url"} if bad else {"errcode": 0, "errmsg": "ok"}
        elif "/open-apis/bot/v2/hook/" in parts.path:
            reply = {"code": 0, "msg": "success", "data": {}}
        else:
            reply = {}
        self._answer(200, json.dumps(reply).encode())

    def _answer(self, code: int, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def robots():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(cli, tmp_path, monkeypatch):
    """A fictional community (the demo), Chinese messages, quick retries; returns the config path."""
    monkeypatch.setenv("COMMCARE_LANG", "zh")
    assert cli("demo", "--residents", "60", "--requests", "80", "--days", "2", "-f", "json").exit_code == 0
    config = tmp_path / "commcare.toml"
    config.write_text("[notify]\nbackoff = 0.05\ntimeout = 2\n", encoding="utf-8")
    return config


def today(cli) -> dict:
    return json.loads(cli("report", "today", "-f", "json").stdout)


def lines_of(report: dict) -> list[str]:
    """The figures as the message must carry them (label：count), from the report's JSON."""
    r, c, h = report["requests"], report["calls"], report["staff_health"]
    return [
        f"新增求助：{r['opened']}",
        f"办结求助：{r['resolved']}",
        f"未办结求助：{r['open']}",
        f"逾期求助：{r['overdue']}",
        f"应联系（特殊群体）：{c['due']}",
        f"已联系：{c['made']}",
        f"未联系到：{len(c['missed'])}",
        f"应报体温人数：{h['due']}",
        f"体温未报齐：{len(h['missing'])}",
        f"收到捐赠：{report['donations']['received']}",
    ]


def body_of(robots, path_part: str) -> dict:
    [seen] = [s for s in robots.seen if path_part in s["path"]]
    assert seen["type"] == "application/json; charset=utf-8"
    return json.loads(seen["body"].decode("utf-8"))


def test_each_robot_gets_its_documented_message(demo, cli, robots):
    report = today(cli)
    title = f"本社区 工作日报 {report['date']}"
    targets = {
        "wecom": f"{robots.base}/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4",
        "dingtalk": f"{robots.base}/robot/send?access_token=98975521a1b23c02",
        "feishu": f"{robots.base}/open-apis/bot/v2/hook/5e3d587e-d78e-4a07-bd07",
        "webhook": f"{robots.base}/office/evening",
    }
    result = cli("report", "today", "-f", "json", *[x for t in targets.values() for x in ("--notify", t)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["date"] == report["date"]  # the report itself, as ever
    assert result.stderr.count("已送达") == 4 and "693a91f6" not in result.stderr  # the key is not shown

    wecom = body_of(robots, "/cgi-bin/webhook/send")  # developer.work.weixin.qq.com/document/path/91770
    assert set(wecom) == {"msgtype", "markdown"} and wecom["msgtype"] == "markdown"
    assert set(wecom["markdown"]) == {"content"}
    assert wecom["markdown"]["content"].split("\n") == [f"## {title}", *lines_of(report)]
    assert len(wecom["markdown"]["content"].encode("utf-8")) <= 4096

    ding = body_of(robots, "/robot/send")  # open.dingtalk.com/document/robots/custom-robot-access
    assert set(ding) == {"msgtype", "markdown"} and ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == title
    assert ding["markdown"]["text"] == f"### {title}\n\n" + "\n".join(f"- {x}" for x in lines_of(report))

    feishu = body_of(robots, "/open-apis/bot/v2/hook/")  # open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
    assert feishu == {
        "msg_type": "post",
        "content": {
            "post": {"zh_cn": {"title": title, "content": [[{"tag": "text", "text": x}] for x in lines_of(report)]}}
        },
    }

    plain = body_of(robots, "/office/evening")
    assert plain["title"] == title and plain["text"] == "\n".join(lines_of(report))
    r = report["requests"]
    assert plain["figures"] == {
        "report": "today",
        "date": report["date"],
        "community": "default",
        "requests": {
            "opened": r["opened"],
            "resolved": r["resolved"],
            "open": r["open"],
            "overdue": r["overdue"],
            "by_category": [{k: x[k] for k in ("category", "opened", "resolved", "open")} for x in r["by_category"]],
        },
        "calls": {
            "due": report["calls"]["due"],
            "made": report["calls"]["made"],
            "missed": len(report["calls"]["missed"]),
        },
        "staff_health": {"due": report["staff_health"]["due"], "missing": len(report["staff_health"]["missing"])},
        "donations": {"received": report["donations"]["received"]},
    }


def test_signed_robots_carry_the_documented_signature(demo, cli, robots, monkeypatch):
    demo.write_text(
        '[notify]\ndingtalk_secret = "SEC0123456789abcdef"\nfeishu_secret_env = "FEISHU_SECRET"\n', encoding="utf-8"
    )
    monkeypatch.setenv("FEISHU_SECRET", "nIMtb7r3N9pkXyXdtAbx6e")
    before = time.time()
    result = cli(
        "report",
        "today",
        "--notify",
        f"{robots.base}/robot/send?access_token=abc",
        "--notify",
        f"{robots.base}/open-apis/bot/v2/hook/xyz",
    )
    assert result.exit_code == 0, result.stderr
    [ding] = [s for s in robots.seen if s["path"] == "/robot/send"]
    stamp = ding["query"]["timestamp"]  # milliseconds; sign = base64(HmacSHA256(secret, "ts\nsecret"))
    assert ding["query"]["access_token"] == "abc" and before * 1000 - 1000 <= int(stamp) <= time.time() * 1000
    expected = base64.b64encode(
        hmac.new(b"SEC0123456789abcdef", f"{stamp}\nSEC0123456789abcdef".encode(), hashlib.sha256).digest()
    ).decode()
    assert ding["query"]["sign"] == expected
    feishu = body_of(robots, "/open-apis/bot/v2/hook/")  # seconds; key "ts\nsecret", empty message
    assert before - 1 <= int(feishu["timestamp"]) <= time.time()
    key = f"{feishu['timestamp']}\nnIMtb7r3N9pkXyXdtAbx6e".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert feishu["msg_type"] == "post"


def test_a_failing_server_is_tried_again_with_growing_waits(demo, cli, robots):
    result = cli("report", "today", "--notify", f"{robots.base}/fail500/hook")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"没有送达：{robots.base}/fail500/hook：HTTP 500（试了 3 次）")
    times = [s["at"] for s in robots.seen]
    assert len(times) == 3 and times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1
    robots.seen.clear()
    assert cli("report", "today", "--notify", f"{robots.base}/flaky/hook").exit_code == 0
    assert len(robots.seen) == 2


def test_a_robot_that_refuses_is_not_asked_again(demo, cli, robots):
    result = cli("report", "today", "--notify", f"{robots.base}/cgi-bin/webhook/send?key=bad")
    assert result.exit_code == 1 and len(robots.seen) == 1
    assert "key=***" in result.stderr and "code 93000: invalid webhook url（试了 1 次）" in result.stderr


def test_a_server_that_is_down_or_silent(demo, cli):
    refused = cli("report", "today", "--notify", f"http://127.0.0.1:{free_port()}/hook")
    assert refused.exit_code == 1 and "Connection refused（试了 3 次）" in refused.stderr
    demo.write_text("[notify]\nbackoff = 0.01\ntimeout = 0.3\n", encoding="utf-8")
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        result = cli("report", "today", "--notify", f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
    assert result.exit_code == 1 and "timed out（试了 3 次）" in result.stderr
    assert time.monotonic() - started < 5  # bounded: three tries of 0.3 s and the waits


class Mailbox:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    controller_mod = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is in the test extra")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"office", b"s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    box, port = Mailbox(), free_port()
    controller = controller_mod.Controller(
        box, hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False
    )
    controller.start()
    box.port = port
    yield box
    controller.stop()


def test_mail_through_smtp_with_login(demo, cli, smtp_server, monkeypatch):
    monkeypatch.setenv("OFFICE_SMTP_PASSWORD", "s3cret")
    demo.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nuser = "office"\n'
        f'password_env = "OFFICE_SMTP_PASSWORD"\nfrom = "居委会 <office@example.org>"\n',
        encoding="utf-8",
    )
    report = today(cli)
    result = cli("report", "today", "--notify", "mailto:sec@example.org,head@example.org")
    assert result.exit_code == 0, result.stderr
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["sec@example.org", "head@example.org"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == f"本社区 工作日报 {report['date']}"
    assert message["From"].addresses[0].addr_spec == "office@example.org"
    assert message.get_content().splitlines() == [f"本社区 工作日报 {report['date']}", "", *lines_of(report)]


def test_mail_refused_login_and_a_mail_server_that_is_down(demo, cli, smtp_server):
    demo.write_text(
        f'[notify]\nbackoff = 0.01\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
        f'user = "office"\npassword = "wrong"\n',
        encoding="utf-8",
    )
    refused = cli("report", "today", "--notify", "mailto:sec@example.org")
    assert refused.exit_code == 1 and "SMTP 535" in refused.stderr and "试了 1 次" in refused.stderr
    demo.write_text(f'[notify]\nbackoff = 0.01\n[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\n', encoding="utf-8")
    down = cli("report", "today", "--notify", "mailto:sec@example.org")
    assert down.exit_code == 1 and "试了 3 次" in down.stderr and smtp_server.envelopes == []


def test_bad_targets_are_refused_before_anything_is_sent(demo, cli, robots):
    assert cli("report", "today", "--notify", "ftp://example.org/x").exit_code == 2
    no_smtp = cli("report", "today", "--notify", "mailto:sec@example.org")
    assert no_smtp.exit_code == 2 and "[smtp]" in no_smtp.stderr and no_smtp.stdout == ""
    assert cli("schedule", "install", "--notify", "mailto:sec@example.org", "--print").exit_code == 2
    assert robots.seen == []


def test_no_name_phone_or_id_number_leaves_the_office(demo, cli, robots, smtp_server, tmp_path):
    demo.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nuser = "office"\npassword = "s3cret"\n',
        encoding="utf-8",
    )
    targets = [
        f"{robots.base}/cgi-bin/webhook/send?key=k",
        f"{robots.base}/robot/send?access_token=t",
        f"{robots.base}/open-apis/bot/v2/hook/h",
        f"{robots.base}/any",
        "mailto:sec@example.org",
    ]
    for report in ("today", "week"):
        assert (
            cli(
                "schedule",
                "run",
                "--report",
                report,
                "--dir",
                tmp_path / report,
                *[x for t in targets for x in ("--notify", t)],
            ).exit_code
            == 0
        )
    sent = [unquote(s["body"].decode("utf-8")) for s in robots.seen]  # JSON with the characters as they are
    for envelope in smtp_server.envelopes:  # the mail decoded from its transfer encoding
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        sent.append(f"{message['Subject']}\n{message.get_content()}")
    assert len(robots.seen) == 8 and len(smtp_server.envelopes) == 2
    db = sqlite3.connect(tmp_path / "commcare.db")
    secrets = set()
    for row in db.execute(
        "SELECT name, phone, id_number, emergency_name, emergency_phone FROM residents "
        "UNION ALL SELECT name, phone, NULL, NULL, NULL FROM staff"
    ):
        secrets |= {v for v in row if v}
    secrets |= {f"{p[:3]}****{p[-4:]}" for p in list(secrets) if p.isdigit() and len(p) == 11}
    assert len(secrets) > 100
    found = {s for s in secrets for text in sent if s in text}
    assert found == set()


def test_the_installed_line_delivers_and_the_delivery_is_recorded(demo, cli, robots, tmp_path, monkeypatch):
    """schedule install --notify: the line, run as cron runs it, writes the file, then tells
    the group's robot; `schedule status` shows the delivery with the key hidden."""
    import datetime as dt
    import subprocess
    from zoneinfo import ZoneInfo

    monkeypatch.setenv("COMMCARE_CRONTAB", str(tmp_path / "crontab"))
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    url = f"{robots.base}/cgi-bin/webhook/send?key=693a91f6-7xxx"
    reports = tmp_path / "日报"
    assert cli("schedule", "install", "--at", now.strftime("%H:%M"), "--dir", reports, "--notify", url).exit_code == 0
    [line] = [x for x in (tmp_path / "crontab").read_text(encoding="utf-8").splitlines() if "commcare-summary" in x]
    assert f"--notify '{url}'" in line
    subprocess.run(
        ["env", "-i", "SHELL=/bin/sh", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", "sh", "-c", line.split(" ", 5)[5]],
        check=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    content = body_of(robots, "/cgi-bin/webhook/send")["markdown"]["content"]
    assert content.startswith(f"## 本社区 工作日报 {now.date().isoformat()}\n新增求助：")
    assert (reports / f"{now.date().isoformat()}.md").exists()
    status = json.loads(cli("schedule", "status", "-f", "json").stdout)
    assert status["runs"][-1]["delivery"] == [
        {"to": f"{robots.base}/cgi-bin/webhook/send?key=***", "kind": "wecom", "ok": True, "tries": 1, "error": None}
    ]
    assert "693a91f6" not in json.dumps(status) and status["problem"] is None
