"""The interactive morning round (``commcare call round``): one card per resident due a call,
one key per answer, each answer saved in its own transaction as it is given.

Cards and prompts go to stderr, so stdout carries only the closing summary. On a terminal a
key is read without Enter; from a pipe (or a test) one line per answer.
"""

import sys

KEYS = {"o": "ok", "h": "needs-help", "n": "no-answer", "u": "unreachable"}


def read_key(prompt: str) -> str:
    """One key on a terminal (no Enter needed); the first letter of a line from a pipe.
    End of input, Ctrl-C and Ctrl-D stop the round ("q")."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.strip()[:1].lower() if line else "q"
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        ch = sys.stdin.read(1)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
    sys.stderr.write((ch if ch.isprintable() else "") + "\n")
    return "q" if ch in ("\x03", "\x04", "") else ch.lower()


def read_line(prompt: str) -> str | None:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    return line.strip() if line else None


def run(st, liaison: str | None) -> None:
    """The round over the residents due now; start-up (imports, database) is paid once."""
    from commcare import calls
    from commcare.commands.common import label, say

    due = st.read(calls.due_calls, liaison, None, True)
    done: dict[str, int] = {}
    for n, row in enumerate(due, start=1):
        show_card(row, n, len(due))
        outcome = answer(st, row)
        if outcome == "q":
            break
        if outcome != "s":
            done[outcome] = done.get(outcome, 0) + 1
    say(
        "round.done",
        done=sum(done.values()),
        total=len(due),
        outcomes="、".join(f"{label('outcome', k)} {v}" for k, v in done.items()) or "-",
    )


def show_card(row: dict, n: int, total: int) -> None:
    from commcare.i18n import t

    place = " ".join(p for p in (row["compound"], row["address"]) if p)
    lines = [
        t(
            "round.card",
            n=n,
            total=total,
            resident=row["resident"],
            phone=row["phone"] or "-",
            address=place,
            tries=row["calls_today"],
            contact=row["emergency_contact"] or "-",
            last=row["last_note"] or "-",
        )
    ]
    if row["escalate"]:
        lines.append(t("round.escalate"))
    if row["unreached_flag"]:
        lines.append(t("call.alert_unreached", days=row["days_unreached"]))
    from commcare.render.terminal_text import printable

    sys.stderr.write(printable("\n".join(lines), "\n") + "\n")


def answer(st, row: dict) -> str:
    """Ask until a valid key; save the call. Returns the outcome, or "s"/"q"."""
    from commcare.i18n import t

    key = read_key(t("round.prompt"))
    while key not in KEYS and key not in ("s", "q"):
        key = read_key(t("round.prompt"))
    if key in ("s", "q"):
        return key
    if key == "h":
        return needs_help(st, row)
    save(st, row, KEYS[key], None, None)
    return KEYS[key]


def needs_help(st, row: dict) -> str:
    """needs-help, then "CATEGORY [note]" (empty: no request). A category that is not known is
    said and asked again; nothing is saved until the answer is valid."""
    from commcare.errors import InvalidValue
    from commcare.i18n import t

    while True:
        line = read_line(t("round.category"))
        if line is None:
            return "q"
        category, _, note = line.partition(" ")
        try:
            save(st, row, "needs-help", category or None, note.strip() or None)
            return "needs-help"
        except InvalidValue as exc:
            sys.stderr.write(exc.message() + "\n")


def save(st, row: dict, outcome: str, category: str | None, note: str | None) -> None:
    from commcare import calls, words
    from commcare.i18n import t

    saved = st.write(calls.log_call, f"#{row['id']}", outcome, note, category, None)
    sys.stderr.write(
        t(
            "round.saved",
            outcome=words.label("outcome", outcome),
            request=f" #{saved['request']}" if saved["request"] else "",
        )
        + "\n"
    )
