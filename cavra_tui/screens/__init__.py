"""One screen per file; each coordinates its widgets and loads its data in workers."""
