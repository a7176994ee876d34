"""The scheduled evening summary: its cron entry (``cron``), the record of each run beside the
register (``history``), and the delivery of its figures to a group chat or mail (``notify``)."""
