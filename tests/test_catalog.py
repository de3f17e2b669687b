"""Item master: CSV and YAML, with line-precise errors."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector.catalog import load_catalog
from connector.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("sku,weight_g,length_cm,width_cm,height_cm,name_en,name_cn,hs_code,declared_value,"
          "declared_currency,battery\n")


def test_sandbox_catalog_loads():
    catalog = load_catalog(ROOT / "config" / "catalog.sandbox.csv")
    item = catalog.get("EARBUDS-BT5")
    assert item is not None and item.has_battery and item.weight_g == 120
    assert item.declared_value.amount == Decimal("12.00") and item.name_cn == "蓝牙耳机"
    assert catalog.get("NOPE") is None


def test_bad_rows_name_line_and_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n"
                    "B,-5,1,1,1,B,乙,12,1.0,USDX,maybe\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    out = [str(p) for p in info.value.problems]
    assert f"{path}:3: weight_g: must be greater than 0" in out
    assert f"{path}:3: hs_code: must be 6 to 10 digits" in out
    assert f"{path}:3: declared_currency: must be a 3-letter ISO 4217 code" in out
    assert f"{path}:3: battery: must be yes or no" in out

    path.write_text(HEADER + "X" * 101 + ",10,1,1,1,A,甲,123456,1.0,USD,no\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{path}:2: sku: must be printable text of at most 100"):
        load_catalog(path)  # the same rule as the API's item upserts


def test_duplicate_sku_and_missing_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1,USD,no\nA,10,1,1,1,A,甲,123456,1,USD,no\n")
    with pytest.raises(ConfigError, match="SKU A appears twice"):
        load_catalog(path)
    path.write_text("sku,weight_g\nA,1\n")
    with pytest.raises(ConfigError, match="missing column"):
        load_catalog(path)


def test_a_misspelled_column_is_warned_of_and_one_of_the_users_own_is_not(tmp_path, caplog):
    path = tmp_path / "c.csv"
    path.write_text(HEADER.replace("battery", "battery,catgory,notes")
                    + "A,10,1,1,1,A,甲,123456,1,USD,no,Electronics,from the ERP\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="connector.catalog"):
        catalog = load_catalog(path)
    assert catalog.get("A").category in (None, "")  # the misspelled column is not read...
    [warning] = [r.getMessage() for r in caplog.records]  # ...but said, once; "notes" is not
    assert warning == (f"{path}:1: column 'catgory' is not a catalog column and is ignored; "
                       "did you mean 'category'?")


def test_yaml_catalog(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- {sku: A, weight_g: 10, length_cm: 1, width_cm: 1, height_cm: 1, name_en: A,\n"
                    "   name_cn: 甲, hs_code: '123456', declared_value: 2.5, declared_currency: eur,\n"
                    "   battery: no}\n"
                    "- {sku: B, weight_g: x}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert any(str(p).startswith(f"{path}:4: weight_g") for p in info.value.problems)

    path.write_text("- 5\n- [sku, A]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:{n}: an item must be a mapping of the catalog's columns (sku: ..., weight_g: ...)"
        for n in (1, 2)]

    path.write_text("- {sku: A, weight_g: 10}\n- {sku: B, weight_g: !grams 10}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2: a value in this item cannot be read (only YAML's standard types are supported: "
        "write it without its tag)"]


def test_a_yaml_catalog_with_a_control_character_names_its_line_not_a_traceback(tmp_path):
    """PyYAML refuses a control character with a ReaderError, which is no syntax error: it escaped
    load_catalog, and `config check` and `run` ended in a traceback."""
    path = tmp_path / "c.yaml"
    path.write_text("- {sku: A, weight_g: 10}\n- {sku: B\x07, weight_g: 10}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:2: the catalog holds a control character (U+0007)"), problem


def test_a_row_a_spreadsheet_mangled_is_named_not_half_read(tmp_path):
    """An unquoted comma, a quote left open, a column twice: each named at its own line, where
    the values used to shift silently or the error land lines later on another column."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,Cable, USB-C,甲,123456,1.0,USD,no\n"
                    '"B,10,1,1,1,B,乙,123456,1.0,USD,no\n'
                    "C,10,1,1,1,C,丙,123456,1.0,USD,no\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2: 12 values for 11 columns (a value with a comma in it goes in double quotes)",
        f"{path}:3: a quote opened on this line is still open at line 4 (a quote inside a value is "
        'written twice: "")']
    twice = HEADER.replace("name_cn", "sku")
    path.write_text(twice + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{path}:1: sku: appears twice in the header"):
        load_catalog(path)


def test_a_sku_is_shown_with_its_invisible_characters_escaped():
    from connector.catalog import shown_sku

    assert shown_sku("YOGA-MAT-6MM") == "YOGA-MAT-6MM"
    assert shown_sku("YOGA-MAT-6MM\u200b") == "'YOGA-MAT-6MM\\u200b' (it holds invisible characters)"
    assert shown_sku("YOGA-MAT-6MM ") == "'YOGA-MAT-6MM ' (it holds invisible characters)"


@pytest.mark.parametrize("currency", ["ZZZ", "ABC", "XXX", "XTS", "RMB"])
def test_a_currency_that_is_not_iso_4217_is_refused_at_its_line(tmp_path, currency):
    """ZZZ passed `config check`, and labels were bought declaring a customs value in ZZZ. The
    codes that name no money (XXX: no currency, XTS: testing) are no customs currency either."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n"
                    f"B,10,1,1,1,B,乙,123456,1.0,{currency},no\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: declared_currency: is not an ISO 4217 currency code (e.g. USD, EUR, CNY)"]


@pytest.mark.parametrize("currency", ["USD", "eur", "CNY", "XOF", "AED", "ZAR"])
def test_an_iso_4217_currency_is_taken(tmp_path, currency):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + f"A,10,1,1,1,A,甲,123456,1.0,{currency},no\n", encoding="utf-8")
    assert load_catalog(path).get("A").declared_value.currency == currency.upper()


def test_every_currency_the_fx_table_and_the_sites_use_is_iso_4217():
    from connector.amazon.sites import BUILTIN
    from connector.fx import DEFAULT_RATES, ISO_4217

    assert set(DEFAULT_RATES.rates) <= ISO_4217
    assert {site.currency for site in BUILTIN.values()} <= ISO_4217


def test_the_api_refuses_a_currency_that_is_not_iso_4217_as_the_file_does():
    from connector.catalog import parse_item

    row = {"sku": "A", "weight_g": "10", "length_cm": "1", "width_cm": "1", "height_cm": "1", "name_en": "A",
           "name_cn": "甲", "hs_code": "123456", "declared_value": "1.0", "declared_currency": "zzz",
           "battery": "no"}
    assert parse_item(row) == (None, [("declared_currency",
                                       "is not an ISO 4217 currency code (e.g. USD, EUR, CNY)")])


def test_a_yaml_catalog_keeps_a_numeric_sku_and_hs_code_as_written(tmp_path):
    """Unquoted, 0012345 is an octal number to YAML (5349) and 12_345 the number 12345: an SKU read
    so would never match the order's, which then sat held unknown_sku beside its own row."""
    path = tmp_path / "c.yaml"
    path.write_text("- {sku: 0012345, weight_g: 10, length_cm: 1, width_cm: 1, height_cm: 1, name_en: A,\n"
                    "   name_cn: 甲, hs_code: 030617, declared_value: 2.5, declared_currency: USD,\n"
                    "   battery: no}\n"
                    "- {sku: 12_345, weight_g: 10, length_cm: 1, width_cm: 1, height_cm: 1, name_en: B,\n"
                    "   name_cn: 乙, hs_code: 123456, declared_value: 2.5, declared_currency: USD,\n"
                    "   battery: no}\n", encoding="utf-8")
    catalog = load_catalog(path)
    assert sorted(catalog.items) == ["0012345", "12_345"]
    assert catalog.get("0012345").hs_code == "030617"


def test_a_blank_line_between_rows_is_skipped_not_taken_for_an_open_quote(tmp_path):
    """A spreadsheet's empty row between items: the reader skips it, and the row after it is read
    at its own line -- it used to refuse the whole file, naming a quote nobody opened."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n\n\n"
                    "B,20,1,1,1,B,乙,123456,1.0,USD,no\n\nC,x,1,1,1,C,丙,123456,1.0,USD,no\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:7: weight_g: must be a number"]
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n\nB,20,1,1,1,B,乙,123456,1.0,USD,no\n\n",
                    encoding="utf-8")
    catalog = load_catalog(path)
    assert len(catalog) == 2 and catalog.get("B").weight_g == 20


def test_blank_header_cells_a_spreadsheet_left_are_ignored_not_a_column_twice(tmp_path):
    """A spreadsheet exports the empty columns of its used range as trailing commas: one blank
    header cell was ignored, two refused the whole file as a column "appearing twice" that has no
    name. A named column twice is still refused."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER.replace("battery\n", "battery,,,\n") + "A,10,1,1,1,A,甲,123456,1.0,USD,no,,,\n"
                    "B,20,1,1,1,B,乙,123456,1.0,USD,yes,,,\n", encoding="utf-8")
    catalog = load_catalog(path)
    assert len(catalog) == 2 and catalog.get("B").weight_g == 20 and catalog.get("B").has_battery
    path.write_text(HEADER.replace("battery\n", "battery,,hs_code\n")
                    + "A,10,1,1,1,A,甲,123456,1.0,USD,no,,1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:1: hs_code: appears twice in the header"]


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"])
def test_a_line_separator_inside_a_value_does_not_split_its_row(tmp_path, separator):
    """CSV rows end at CR/LF only; str.splitlines() also broke them at U+2028, NEL (U+0085, what a
    cp1252 ellipsis becomes when read as Latin-1) and form feed, so a product name holding one
    refused the file for an open quote or for columns it had, and every later line was numbered
    one too far."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + f'A,10,1,1,1,"Phone{separator}case",甲,123456,1.0,USD,no\n'
                    "B,x,1,1,1,B,乙,123456,1.0,USD,no\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:3: weight_g: must be a number"]
    path.write_text(HEADER + f"A,10,1,1,1,Phone{separator}case,甲,123456,1.0,USD,no\n", encoding="utf-8")
    assert load_catalog(path).get("A").name_cn == "甲"


def test_a_lone_surrogate_or_a_nul_is_refused_naming_its_column_not_stored():
    """JSON may escape half of a UTF-16 pair ("\\ud83d": an emoji cut by an ERP's truncation), and
    json.loads gives it as is: the row passed the check, and writing it to the ledger (UTF-8) failed
    the whole bulk upsert with a 500."""
    from connector.catalog import parse_item

    row = {"sku": "MUG-1", "weight_g": "10", "length_cm": "1", "width_cm": "1", "height_cm": "1",
           "name_en": "Mug \ud83d", "name_cn": "杯", "hs_code": "392690", "declared_value": "1",
           "declared_currency": "USD", "battery": "no"}
    item, problems = parse_item(row)
    assert item is None
    assert problems == [("name_en", "is text that is not valid Unicode, which the ledger cannot store")]
    # a NUL: SQLite would store it, PostgreSQL's text refuses it (the same 500 there)
    assert parse_item({**row, "name_en": "Mug", "name_cn": "杯\x00"})[1] == [
        ("name_cn", "is text holding a NUL character, which the ledger cannot store")]
    assert parse_item({**row, "name_en": "Mug \U0001f600"})[0].name_en == "Mug \U0001f600"


@pytest.mark.parametrize("weight", ["1.000", "2.500", "12.000", "1.000.000"])
def test_a_weight_with_a_point_before_three_digits_is_refused_as_ambiguous_not_guessed(tmp_path, weight):
    """``1.000`` in weight_g was 1 g: where ``.`` separates thousands (de, fr, it, es...) it is 1000 g,
    and the label was bought for a parcel 1000 times too light. The row is refused instead."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,10,1,1,1,A,甲,123456,1.0,USD,no\n"
                    f'B,"{weight}",1,1,1,B,乙,123456,1.0,USD,no\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: weight_g: {weight} is ambiguous (a decimal point, or '.' between thousands?): write "
        f"whole grams without separators, e.g. {weight.replace('.', '')}"]


def test_a_yaml_weight_written_1_000_is_refused_as_the_csv_one_is(tmp_path):
    """YAML reads an unquoted 1.000 as the number 1.0: the file's text is what is judged."""
    path = tmp_path / "c.yaml"
    path.write_text("- {sku: A, weight_g: 1.000, length_cm: 1, width_cm: 1, height_cm: 1, name_en: A,\n"
                    "   name_cn: 甲, hs_code: '123456', declared_value: 2.5, declared_currency: EUR,\n"
                    "   battery: no}\n"
                    "- {sku: B, weight_g: 1_000, length_cm: 1.000, width_cm: 1, height_cm: 1, name_en: B,\n"
                    "   name_cn: 乙, hs_code: '123456', declared_value: 2.5, declared_currency: EUR,\n"
                    "   battery: no}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1: weight_g: 1.000 is ambiguous (a decimal point, or '.' between thousands?): write "
        "whole grams without separators, e.g. 1000"]
    path.write_text(path.read_text(encoding="utf-8").replace("weight_g: 1.000", "weight_g: 1000"),
                    encoding="utf-8")
    catalog = load_catalog(path)  # the other readings stand: 1_000 is 1000 g, centimetres are decimals
    assert catalog.get("A").weight_g == catalog.get("B").weight_g == 1000
    assert catalog.get("B").length_cm == 1


def test_a_yaml_catalog_nested_too_deeply_names_its_line_not_a_traceback(tmp_path):
    """PyYAML reads nested values with a call per level: a few hundred levels overflowed Python's
    stack, and `config check` and `run` ended in a RecursionError traceback."""
    path = tmp_path / "c.yaml"
    path.write_text("- {sku: A, weight_g: 10}\n- {sku: B, weight_g: " + "[" * 2000 + "]" * 2000 + "}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:2: the catalog nests values more than 64 levels deep"), problem


def test_a_quote_never_closed_in_a_large_catalog_names_its_line_not_a_traceback(tmp_path):
    """In a catalog over 128 KiB, a quote left open read the rest of the file as one value, past
    the csv module's limit for one: its csv.Error escaped, and `config check` and `run` ended in a
    traceback instead of naming the line, as they do for a small file."""
    path = tmp_path / "c.csv"
    rows = "".join(f"SKU-{n:05d},10,1,1,1,Item,甲,123456,1.0,USD,no\n" for n in range(4000))
    path.write_text(HEADER + "A,10,1,1,1,Item,甲,123456,1.0,USD,no\n"
                    '"B,10,1,1,1,Item,乙,123456,1.0,USD,no\n' + rows, encoding="utf-8")
    assert path.stat().st_size > 131072
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:3: a quote opened on this line is never closed"), problem
