#!/bin/sh
# The ticketbridge state database, beside Temporal's (run once, on an empty data directory).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE ticketbridge LOGIN PASSWORD '${TICKETBRIDGE_DB_PASSWORD}';
CREATE DATABASE ticketbridge OWNER ticketbridge;
SQL
