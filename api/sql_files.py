"""The API's SQL: the files in api/sql/ (spacecredits/sqlfiles.py says how)."""

from spacecredits.sqlfiles import SQLFiles

files = SQLFiles(__file__)
read, version, apply = files.read, files.version, files.apply
