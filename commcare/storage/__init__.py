"""Where the register is kept: the schema (tables), its migrations, the maintenance of the file (backup, restore, check, upgrade) and retention."""
