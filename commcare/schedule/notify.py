"""Pushing the day's figures where the office already looks: a group robot (企业微信, 钉钉,
飞书), any other web address (a plain JSON POST), or mail (``mailto:``, SMTP from the config).

Only figures travel: counts, the date and the community's name; never a resident's or staff
member's name, phone or ID number. The robot is told by the path of its webhook, which each
service documents and which does not depend on the host (so a test server, or a proxy, is
addressed like the real one):

==========  ==================================  ==========================================
kind        webhook path                        message
==========  ==================================  ==========================================
wecom       ``/cgi-bin/webhook/send?key=…``     ``msgtype: markdown`` (``content``)
dingtalk    ``/robot/send?access_token=…``      ``msgtype: markdown`` (``title``, ``text``);
                                                signed when ``[notify] dingtalk_secret``
feishu      ``/open-apis/bot/v2/hook/…``        ``msg_type: post`` (title, a line each);
                                                signed when ``[notify] feishu_secret``
webhook     any other http(s) URL               ``{"title", "text", "figures"}``
mail        ``mailto:ADDRESS[,ADDRESS]``        plain text, through ``[smtp]``
==========  ==================================  ==========================================

Each delivery is tried ``[notify] tries`` times (default 3), each try bounded by ``timeout``
seconds (default 10), waiting ``backoff`` seconds, then twice that, between tries (default 2):
a refused or dropped connection, a timeout, HTTP 5xx or 429 and an SMTP 4xx are tried again;
a robot's non-zero ``errcode``/``code``, any other HTTP error and an SMTP 5xx are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, quote_plus, unquote, urlsplit, urlunsplit

from commcare.errors import InvalidValue

ROBOT_PATHS = (("wecom", "/cgi-bin/webhook/send"), ("dingtalk", "/robot/send"), ("feishu", "/open-apis/bot/v2/hook/"))


class _Retry(Exception):
    """A failure worth another try."""


class _Fail(Exception):
    """A failure another try will not mend."""


def kind_of(target: str) -> str:
    if target.lower().startswith("mailto:"):
        return "mail"
    path = urlsplit(target).path
    for kind, shape in ROBOT_PATHS:
        if path.endswith(shape) or (shape.endswith("/") and shape in path):
            return kind
    return "webhook"


def check_target(target: str, config: dict) -> str:
    """The target's kind; a bad address, or mail without ``[smtp] host``: exit 2."""
    kind = kind_of(target)
    if kind == "mail":
        if not all("@" in a for a in _addresses(target)):
            raise InvalidValue("notify.bad_target", field="notify", value=target)
        if not (config.get("smtp") or {}).get("host"):
            raise InvalidValue("notify.no_smtp", field="notify", value=target)
        return kind
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("notify.bad_target", field="notify", value=masked(target))
    return kind


def _addresses(target: str) -> list[str]:
    return [a.strip() for a in unquote(target.split(":", 1)[1].split("?", 1)[0]).split(",") if a.strip()]


def masked(target: str) -> str:
    """The target as it may be recorded and shown: the robot's key, token or hook id hidden."""
    if target.lower().startswith("mailto:"):
        return target
    parts = urlsplit(target)
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    path = "/".join("***" if len(seg) >= 16 else seg for seg in parts.path.split("/"))
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, path, query, ""))


def figures(data: dict, report: str = "today") -> dict:
    """The counts of a day report (or a week's rows), and nothing that names a person."""
    if "days" in data:
        keys = ("date", "opened", "resolved", "open", "overdue", "calls_due", "calls_made", "donations")
        return {
            "report": report,
            "from": data["from"],
            "to": data["to"],
            "community": data["community"],
            "totals": dict(data["totals"]),
            "days": [{k: d[k] for k in keys} for d in data["days"]],
        }
    r, c, h = data["requests"], data["calls"], data["staff_health"]
    return {
        "report": report,
        "date": data["date"],
        "community": data["community"],
        "requests": {
            "opened": r["opened"],
            "resolved": r["resolved"],
            "open": r["open"],
            "overdue": r["overdue"],
            "by_category": [{k: x[k] for k in ("category", "opened", "resolved", "open")} for x in r["by_category"]],
        },
        "calls": {"due": c["due"], "made": c["made"], "missed": len(c["missed"])},
        "staff_health": {"due": h["due"], "missing": len(h["missing"])},
        "donations": {"received": data["donations"]["received"]},
    }


def summary(figs: dict) -> tuple[str, list[str]]:
    """(title, lines) in the current language."""
    from commcare.i18n import t
    from commcare.render.report import community_name

    community = community_name(figs["community"])

    def line(key, value):
        return t("notify.line", label=t(key), value=value)

    if "days" in figs:
        total = figs["totals"]
        lines = [
            line("report.opened", total["opened"]),
            line("report.resolved", total["resolved"]),
            line("report.calls_made", total["calls_made"]),
            line("report.donations_received", total["donations"]),
        ]
        lines += [
            t(
                "notify.day_line",
                date=d["date"],
                opened=d["opened"],
                resolved=d["resolved"],
                made=d["calls_made"],
                due=d["calls_due"],
            )
            for d in figs["days"]
        ]
        return t("report.range_title", start=figs["from"], end=figs["to"], community=community), lines
    r, c, h = figs["requests"], figs["calls"], figs["staff_health"]
    lines = [
        line("report.opened", r["opened"]),
        line("report.resolved", r["resolved"]),
        line("report.open", r["open"]),
        line("report.overdue", r["overdue"]),
        line("report.calls_due", c["due"]),
        line("report.calls_made", c["made"]),
        line("report.calls_missed", c["missed"]),
        line("report.health_due", h["due"]),
        line("report.health_missing", h["missing"]),
        line("report.donations_received", figs["donations"]["received"]),
    ]
    return t("report.title", date=figs["date"], community=community), lines


def request(kind: str, target: str, figs: dict, config: dict, now: float | None = None) -> tuple[str, dict]:
    """(URL, JSON body) of a robot or webhook delivery, signed where a secret is set."""
    from commcare.i18n import get_lang

    title, lines = summary(figs)
    now = time.time() if now is None else now
    if kind == "wecom":
        return target, {"msgtype": "markdown", "markdown": {"content": "\n".join([f"## {title}", *lines])}}
    if kind == "dingtalk":
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"### {title}\n\n" + "\n".join(f"- {x}" for x in lines)},
        }
        secret = _secret(config, "dingtalk")
        if secret:
            stamp = str(int(now * 1000))
            digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
            target += f"&timestamp={stamp}&sign={quote_plus(base64.b64encode(digest))}"
        return target, body
    if kind == "feishu":
        lang = "zh_cn" if get_lang() == "zh" else "en_us"
        body = {
            "msg_type": "post",
            "content": {"post": {lang: {"title": title, "content": [[{"tag": "text", "text": x}] for x in lines]}}},
        }
        secret = _secret(config, "feishu")
        if secret:
            stamp = str(int(now))
            digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
            body = {"timestamp": stamp, "sign": base64.b64encode(digest).decode(), **body}
        return target, body
    return target, {"title": title, "text": "\n".join(lines), "figures": figs}


def _secret(config: dict, kind: str) -> str | None:
    import os

    table = config.get("notify") or {}
    env = table.get(f"{kind}_secret_env")
    return (os.environ.get(env) if env else None) or table.get(f"{kind}_secret")


def deliver(targets, figs: dict, config: dict, sleep=time.sleep) -> list[dict]:
    """Send ``figs`` to each target; one result each: ``{"to", "kind", "ok", "tries", "error"}``."""
    table = config.get("notify") or {}
    tries = max(1, int(table.get("tries", 3)))
    timeout = float(table.get("timeout", 10))
    backoff = float(table.get("backoff", 2))
    results = []
    for target in targets:
        kind = kind_of(target)

        def send(target=target, kind=kind):
            if kind == "mail":
                _send_mail(_addresses(target), figs, config, timeout)
            else:
                _send_http(kind, *request(kind, target, figs, config), timeout)

        results.append({"to": masked(target), "kind": kind, **_with_retries(send, tries, backoff, sleep)})
    return results


def _with_retries(send, tries: int, backoff: float, sleep) -> dict:
    problem = ""
    for n in range(1, tries + 1):
        try:
            send()
            return {"ok": True, "tries": n, "error": None}
        except _Fail as exc:
            return {"ok": False, "tries": n, "error": str(exc)}
        except _Retry as exc:
            problem = str(exc)
            if n < tries:
                sleep(backoff * 2 ** (n - 1))
    return {"ok": False, "tries": tries, "error": problem}


def _send_http(kind: str, url: str, body: dict, timeout: float) -> None:
    import urllib.error
    import urllib.request

    from commcare import __version__

    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": f"commcare/{__version__}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = resp.read(65536)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(f"HTTP {exc.code}")
        raise _Fail(f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        raise _Retry(_reason(exc.reason))
    except OSError as exc:  # a timeout while reading, a reset connection
        raise _Retry(_reason(exc))
    if kind != "webhook":
        _check_answer(answer)


def _reason(exc) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _check_answer(answer: bytes) -> None:
    """A robot answers 200 with its own code: 企业微信 and 钉钉 ``errcode``, 飞书 ``code``."""
    try:
        reply = json.loads(answer)
    except ValueError:
        raise _Fail("the robot's answer is not JSON")
    if not isinstance(reply, dict):
        raise _Fail("the robot's answer is not JSON")
    code = reply.get("errcode", reply.get("code", reply.get("StatusCode", 0)))
    if code not in (0, None):
        raise _Fail(f"code {code}: {reply.get('errmsg') or reply.get('msg') or ''}".strip())


def _send_mail(addresses: list[str], figs: dict, config: dict, timeout: float) -> None:
    import os
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    smtp = config.get("smtp") or {}
    use_ssl, starttls = bool(smtp.get("ssl")), bool(smtp.get("starttls"))
    port = int(smtp.get("port") or (465 if use_ssl else 587 if starttls else 25))
    user = smtp.get("user")
    password = os.environ.get(smtp["password_env"]) if smtp.get("password_env") else smtp.get("password")
    title, lines = summary(figs)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = (
        title,
        smtp.get("from") or user or "commcare@localhost",
        ", ".join(addresses),
    )
    msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain="commcare")
    msg.set_content("\n".join([title, "", *lines]) + "\n")
    try:
        server: smtplib.SMTP
        if use_ssl:
            server = smtplib.SMTP_SSL(smtp["host"], port, timeout=timeout, context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(smtp["host"], port, timeout=timeout)
        with server:
            if starttls:
                server.starttls(context=ssl.create_default_context())
            if user:
                server.login(user, password or "")
            server.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise (_Retry if all(400 <= c < 500 for c in codes) else _Fail)(f"SMTP {codes[0]}: recipient refused")
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise (_Retry if 400 <= exc.smtp_code < 500 else _Fail)(f"SMTP {exc.smtp_code}: {text}")
    except (smtplib.SMTPException, OSError) as exc:
        raise _Retry(_reason(exc))
