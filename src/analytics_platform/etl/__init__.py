"""ETL worker."""
