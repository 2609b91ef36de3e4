-- Run once by the postgres image on an empty data volume: one database for Dagster's run/event/schedule storage,
-- one for the operations book (ledger, halt, high-water mark, alert state). POSTGRES_DB creates `dagster`.
CREATE DATABASE gradient_book;
