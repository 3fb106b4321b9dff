"""Notifications' SQL: the files in notifications/sql/ (spacecredits/sqlfiles.py says how)."""

from spacecredits.sqlfiles import SQLFiles

files = SQLFiles(__file__)
read, version, apply = files.read, files.version, files.apply
