"""SQL over a region's processed data: ``tap query`` and ``tap datasets``, on AWS (Athena) or locally (DuckDB).

Every query runs in exactly one region, against that region's catalog and bucket; anything but one read
statement over the region's own database, or a query naming another region or a bucket that is not the region's
own, is refused before anything runs (:mod:`.guard`).
"""
