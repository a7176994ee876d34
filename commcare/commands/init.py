"""init: the database and a config file."""

from commcare.commands.common import note, say, state


def init() -> None:
    """Create the database (at the newest schema) and a config file; safe to run twice.

    Example:
      commcare init
      commcare --db postgresql+psycopg://office@db.example/commcare init
    """
    from commcare.config import write_default_config

    st = state()
    db = st.database(create=True)
    wrote = write_default_config(st.settings)
    say("init.done" if db.created else "init.already", path=db.where)
    if wrote:
        note("init.config_written", path=str(st.settings.config_path))
