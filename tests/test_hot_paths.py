"""The hot commands give the same answers, and leave the same register, through the statement
cache and the driver as through SQLAlchemy (``tests/hotcheck.py``), on SQLite and PostgreSQL."""

import pytest
from hotcheck import both_ways


def test_call_due_is_the_same_both_ways(hot_register):
    db, actor = hot_register
    fast, _ = both_ways(db, "--as", actor, "call", "due", "--format", "json")
    assert fast.json()  # the demo leaves residents due a call (4 at its fixed 16:30)


BLOCK_PSYCOPG = """
import sys
class NoPsycopg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
sys.meta_path.insert(0, NoPsycopg())
from commcare.cli import main
sys.argv = ["commcare", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [("call", "due"), ("report", "today"), ("request", "list")])
def test_a_hot_command_on_a_server_without_the_postgres_extra_says_which_to_install(args):
    """The driver path falls back to the usual way, which names the extra (exit 3), never an
    internal error."""
    import subprocess
    import sys

    url = "postgresql+psycopg://clerk:s3cret@127.0.0.1:1/commcare"
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_PSYCOPG, "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "commcare[postgres]" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "s3cret" not in done.stderr
