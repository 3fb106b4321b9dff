import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.test import override_settings

from spacecredits.formats import machine_datetime

# A "valid global date and time string" of HTML, to the second.
HTML_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")


@override_settings(TIME_ZONE="Europe/London")
def test_machine_datetime_is_to_the_second_in_local_time_with_its_offset():
    moment = dt.datetime(2026, 6, 5, 13, 30, 7, 152809, tzinfo=ZoneInfo("UTC"))
    written = machine_datetime(moment)
    assert written == "2026-06-05T14:30:07+01:00"  # no microseconds, which HTML refuses
    assert HTML_DATETIME.fullmatch(written)
    assert machine_datetime(None) == ""
