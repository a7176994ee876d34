"""The interactive morning round (``commcare call round``): one card per resident due a call,
one key per answer, each answer saved in its own transaction as it is given.

Cards and prompts go to stderr, so stdout carries only the closing summary. On a terminal a
key is read without Enter; from a pipe (or a test) one line per answer.
"""

import sys
import unicodedata

KEYS = {"o": "ok", "h": "needs-help", "n": "no-answer", "u": "unreachable"}
CONTROL = ("s", "q", "m")  # skip, stop, add a note to the answer that follows


def read_key(prompt: str) -> str:
    """One key on a terminal (no Enter needed); the first character of a line from a pipe
    (an empty line is ``""``). Full-width letters count as their ASCII letters (ｏ is o).
    End of input, Ctrl-C and Ctrl-D stop the round ("q")."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return _key(line.strip()[:1]) if line else "q"
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
    return "q" if ch in ("\x03", "\x04", "") else _key(ch)


def _key(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).lower()


def read_line(prompt: str) -> str | None:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    return line.strip() if line else None


def run(st, liaison: str | None) -> None:
    """The round over the residents due now; start-up (imports, database) is paid once."""
    from commcare import calls
    from commcare.commands.common import label, say

    due = st.read_whole(calls.due_calls, liaison, None, True)
    fever_notice(st)
    done: dict[str, int] = {}
    for n, row in enumerate(due, start=1):
        show_card(row, n, len(due), st.read(calls.card_details, row["id"]), st.ctx.today().year)
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


def fever_notice(st) -> None:
    """Staff with a fever today, named before the round starts (they should not go visiting)."""
    from commcare import health
    from commcare.commands.common import note

    fever = st.read(health.fever_today)
    if fever:
        note("round.staff_fever", staff="、".join(f"{f['staff']} {f['temp']:g}℃" for f in fever))


def show_card(row: dict, n: int, total: int, details: dict | None = None, year: int | None = None) -> None:
    from commcare.i18n import t
    from commcare.render.terminal_text import printable

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
    lines += detail_lines(details or {"tags": [], "requests": []}, year)
    if row["escalate"]:
        lines.append(t("round.escalate_visit" if row.get("escalate_action") == "visit" else "round.escalate"))
    if row["unreached_flag"]:
        lines.append(t("call.alert_unreached", days=row["days_unreached"]))
    sys.stderr.write(printable("\n".join(lines), "\n") + "\n")


def detail_lines(details: dict, year: int | None) -> list[str]:
    """The card's tags (in words) and open requests (category, due as people write it)."""
    from commcare import words
    from commcare.i18n import t
    from commcare.render.times import human_time

    groups = [str(words.label("tags", slug)) for slug in details["tags"]]
    lines = [t("round.tags", tags="、".join(groups) or "-")]
    for r in details["requests"]:
        lines.append(
            t(
                "round.open_request",
                id=r["id"],
                category=words.label("category", r["category"]),
                due=human_time(r["due"], year),
            )
        )
    return lines


def answer(st, row: dict) -> str:
    """Ask until a valid key; save the call. Returns the outcome, or "s"/"q". ``m`` first asks
    for a note, saved with the answer that follows (any outcome)."""
    from commcare.commands.common import note
    from commcare.i18n import t

    memo: str | None = None
    while True:
        key = read_key(t("round.prompt_keys"))
        if key in ("s", "q"):
            return key
        if key == "m":
            memo = read_line(t("round.note")) or memo
            if memo:
                note("round.note_kept", note=memo)
            continue
        if key in KEYS:
            break
        note("round.unknown_key", pressed=shown_key(key))
    if key == "h":
        return needs_help(st, row, memo)
    save(st, row, KEYS[key], None, memo)
    return KEYS[key]


def shown_key(key: str) -> str:
    """A key as the message names it: Enter, a space, or the character itself."""
    from commcare.i18n import t

    if key in ("", "\r", "\n"):
        return t("round.key_enter")
    if key.isspace():
        return t("round.key_space")
    return key if key.isprintable() else repr(key)


def needs_help(st, row: dict, memo: str | None = None) -> str:
    """needs-help, then "CATEGORY [note]" (empty: no request). A category that is not known is
    said and asked again; nothing is saved until the answer is valid."""
    from commcare.errors import InvalidValue
    from commcare.i18n import t

    while True:
        line = read_line(t("round.category"))
        if line is None:
            return "q"
        category, _, text = line.partition(" ")
        words = "；".join(p for p in (memo, text.strip()) if p) or None
        try:
            save(st, row, "needs-help", category or None, words)
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
