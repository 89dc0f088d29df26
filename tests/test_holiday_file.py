"""NSE's published holiday lists, as a user supplies them (OPCHAIN_HOLIDAYS_FILE): docs/calendar.md.

The samples are in NSE's formats with fixed-date holidays of 2027; they are examples, not the
published 2027 list.
"""

import json
import os
from datetime import date
from pathlib import Path

import pytest

from opchain.market.holiday_file import HolidayFileError, parse_holiday_file
from opchain.settings import HOLIDAYS_FILE_LIMIT, read_holidays_file

CSV = (
    "\ufeff"  # a spreadsheet's byte-order mark
    '"Sr. No","Date","Day","Description"\r\n'
    '"1","26-Jan-2027","Tuesday","Republic Day"\r\n'
    '"2","14-Apr-2027","Wednesday","Dr. Baba Saheb Ambedkar Jayanti"\r\n'
    "\r\n"
    '"3","15-Aug-2027","Sunday","Independence Day"\r\n'
)

# The shape of https://www.nseindia.com/api/holiday-master?type=trading: segments of entries.
JSON = {
    "CM": [
        {"Sr_no": 1, "tradingDate": "26-Jan-2027", "weekDay": "Tuesday",
         "description": "Republic Day", "morning_session": "", "evening_session": ""},
    ],
    "FO": [
        {"Sr_no": 1, "tradingDate": "26-Jan-2027", "weekDay": "Tuesday",
         "description": "Republic Day", "morning_session": "", "evening_session": ""},
        {"Sr_no": 2, "tradingDate": "25-Dec-2027", "weekDay": "Saturday",
         "description": "Christmas", "morning_session": "", "evening_session": ""},
    ],
}  # fmt: skip


def test_nse_csv_download() -> None:
    found = parse_holiday_file(CSV, "h.csv")
    assert found.years == {
        2027: {
            date(2027, 1, 26): "Republic Day",
            date(2027, 4, 14): "Dr. Baba Saheb Ambedkar Jayanti",
            date(2027, 8, 15): "Independence Day",
        }
    }
    assert found.segment == ""


def test_csv_headers_by_name_not_position_and_iso_dates() -> None:
    text = "description,tradingDate\nRepublic Day,2027-01-26\nHoli,22-MAR-2027\n"
    assert parse_holiday_file(text, "h.csv").years[2027] == {
        date(2027, 1, 26): "Republic Day",
        date(2027, 3, 22): "Holi",
    }


def test_nse_json_reads_the_derivatives_segment() -> None:
    found = parse_holiday_file(json.dumps(JSON, indent=1), "h.json")
    assert found.segment == "FO"
    assert found.years == {
        2027: {date(2027, 1, 26): "Republic Day", date(2027, 12, 25): "Christmas"}
    }
    cash_only = parse_holiday_file(json.dumps({"CM": JSON["CM"]}), "h.json")
    assert cash_only.segment == "CM" and list(cash_only.years[2027]) == [date(2027, 1, 26)]
    bare = parse_holiday_file(json.dumps(JSON["FO"]), "h.json")
    assert bare.segment == "" and len(bare.years[2027]) == 2


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("Sr. No,Date,Day,Description\n1,26-Jan-2027,Monday,Republic Day\n",
         "h:2", "26-Jan-2027 is a Tuesday, not Monday"),
        ("Sr. No,Date,Day,Description\n1,26-Jan-2027,Tuesday,Republic Day\n2,31-Feb-2027,,X\n",
         "h:3", "'31-Feb-2027' is not a date like 26-Jan-2027"),
        ("Date,Description\n26-Jan-2027,Republic Day\n\n2027-01-26,Again\n",
         "h:4", "2027-01-26 is listed twice (lines 2 and 4)"),
        ("Sr. No,Date,Day,Description\n1,26-Jan-2027,Tuesday\n",
         "h:2", "3 cells where the header has 4"),
        ("Sr. No,Holiday Name\n1,Republic Day\n", "h:1", "no date column in the header"),
        ("Sr. No,Date\n", "h", "no holidays are listed"),
        ("  \n", "h", "the file is empty"),
        ('{"FO": [\n {"tradingDate": "26-Jan-2027"},\n {"tradingDate": 5}\n]}',
         "h:3", "FO entry 2 has no tradingDate"),
        ('{"FO": [\n {"tradingDate": "26-Jan-2027"},\n {"tradingDate": "26-Jan-2O27"}\n]}',
         "h:3", "'26-Jan-2O27' is not a date"),
        ('{"FO": [\n {"tradingDate": "26-Jan-2027",\n "weekDay": "Wednesday"}]}',
         "h:2", "is a Tuesday, not Wednesday"),
        ('{"FO": [\n {"tradingDate": "26-Jan-2027"},\n ]}', "h:3", "not JSON"),
        ('{"CD": []}', "h", "no FO or CM segment in the JSON object (segments: CD)"),
        ('{"FO": {"a": 1}}', "h", "expected a list of holidays"),
    ],
)  # fmt: skip
def test_a_bad_list_is_one_line_naming_file_and_line(text: str, where: str, why: str) -> None:
    with pytest.raises(HolidayFileError) as raised:
        parse_holiday_file(text, "h")
    message = str(raised.value)
    assert message.startswith(f"{where}: ") and why in message
    assert "\n" not in message


def test_reading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(CSV, encoding="utf-8")
    assert len(read_holidays_file(path).years[2027]) == 3
    assert read_holidays_file(path).source == str(path)


def test_reading_refuses_what_is_not_a_small_utf8_file(tmp_path: Path) -> None:
    cases: list[tuple[Path, str]] = [(tmp_path / "missing.csv", "does not exist")]
    cases.append((tmp_path, "is not a regular file"))
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # reading a FIFO would wait forever
    cases.append((fifo, "is not a regular file"))
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (HOLIDAYS_FILE_LIMIT + 1))
    cases.append((big, "larger than"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Date,Description\n26-Jan-2027,R\xe9publique\n")
    cases.append((latin, "not UTF-8"))
    for path, why in cases:
        with pytest.raises(HolidayFileError, match=why) as raised:
            read_holidays_file(path)
        assert str(raised.value).startswith(str(path))
    assert raised.value.line == 2  # the line of the bad byte
