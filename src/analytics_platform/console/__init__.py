"""``tap console``: a read-only web page on localhost showing every region side by side, with a query box bound
to one region at a time (the same guard as ``tap query``)."""
