"""init: the database, its community and a config file."""

from typing import Annotated

import typer

from commcare.commands.common import note, say, state


def init(
    community: Annotated[
        str | None,
        typer.Option(
            "--community",
            help="Name the register's community (社区); asked on a terminal when the "
            'register has none yet. Not on a terminal and not given: "default" (rename it later '
            "with community rename).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create the database (at the newest schema), its community and a config file; safe to
    run twice.

    Example:
      commcare init --community 幸福社区
      commcare --db postgresql+psycopg://office@db.example/commcare init --community 阳光社区
    """
    from commcare import audit, communities
    from commcare.config import write_default_config

    st = state()
    db = st.database(create=True)
    name = community or _named_community(st)
    if name is not None:
        communities.normalize(name)  # a bad name is refused before anything is asked or made
    elif _interactive() and not st.read(lambda conn, ctx: communities.rows(conn)):
        name = _ask_community()
    key_made = not st.settings.audit_key.exists()
    made = st.write(communities.ensure, name)
    several = len(st.read(lambda conn, ctx: communities.rows(conn))) > 1
    wrote = write_default_config(st.settings, made["name"] if made and several else None)
    st.read(lambda conn, ctx: audit.key_for(ctx.settings, conn))  # the audit trail's key (0600)
    say("init.done" if db.created else "init.already", path=db.where)
    if made and made["created"]:
        say("community.added", id=made["id"], name=made["name"])
    if wrote:
        note("init.config_written", path=str(st.settings.config_path))
    if key_made:
        note("audit.key_made", path=str(st.settings.audit_key))


def _named_community(st) -> str | None:
    """The global --community (or the environment's, or the config's), if one is given."""
    return None if st.settings.sources.get("community", "default") == "default" else st.settings.community


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


def _ask_community() -> str:
    from commcare import communities
    from commcare.errors import InvalidValue
    from commcare.i18n import t

    while True:
        answer = typer.prompt(t("community.ask"), default=communities.DEFAULT)
        try:
            return communities.normalize(answer)
        except InvalidValue as exc:
            note("community.ask_again", problem=exc.message())
