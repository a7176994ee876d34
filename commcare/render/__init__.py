"""Output as people and scripts read it: the generic writers (table, JSON, CSV, Markdown, HTML), the report pages, and the call-due list."""
