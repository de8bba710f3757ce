"""The open indicators: public, cached, filtered, never a small cell; the same from the command line."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

import pytest

from gateway.domain import Quarter
from gateway.entrypoints.cli import main
from gateway.store import RecordRelease, RecordReoffence, create_store
from support import make_config

RELEASED = dt.date(2024, 2, 10)


def seed_commands() -> list:
    commands = []
    for n in range(40):
        # Three people released to region 55: a small cell.
        region = "75" if n < 27 else "55" if n < 30 else "71"
        commands.append(RecordRelease(f"p{n}", RELEASED, region, str(Quarter.of(RELEASED)), RELEASED.replace(year=2027)))
    commands += [RecordReoffence(f"p{n}", "NEW_CASE", dt.date(2024, 6, 1), "75") for n in range(8)]
    return commands


@pytest.fixture
async def gateway(start_gateway, receiver):
    started = await start_gateway(receiver.url)
    await started.store.apply(seed_commands(), 0)
    return started


async def test_the_indicators_are_public_json_with_definitions_and_the_computation_date(gateway, http):
    async with http.get(gateway.url + "/api/v1/indicators") as response:
        assert response.status == 200 and response.content_type == "application/json"
        report = await response.json()
        assert response.headers["Cache-Control"].startswith("public, max-age=") and response.headers["ETag"]
    assert report["computed_on"] == gateway.services.indicators.today().isoformat()
    rate = next(i for i in report["indicators"] if i["id"] == "reoffence_36m")
    assert rate["definition"]["denominator"].startswith("Actual releases") and rate["strategy_indicator"] == 1
    national = next(c for c in rate["cells"] if c["region"] == "KZ" and c["period"] == "2024Q1")
    assert (national["numerator"], national["denominator"], national["status"]) == (8, 40, "window_open")
    regional = next(c for c in rate["cells"] if c["region"] == "75" and c["period"] == "2024Q1")
    assert regional["denominator"] == 27


async def test_a_small_region_is_shown_as_fewer_than_five_with_its_complement_hidden(gateway, http):
    async with http.get(gateway.url + "/api/v1/indicators", params={"from": "2024Q1", "to": "2024Q1"}) as response:
        report = await response.json()
    rate = next(i for i in report["indicators"] if i["id"] == "reoffence_12m")
    shown = {c["region"]: c["denominator"] for c in rate["cells"]}
    assert shown["55"] == "<5" and "x" in shown.values()
    assert all(not isinstance(v, int) or v == 0 or v >= 5 for v in shown.values())


async def test_the_same_etag_is_answered_304(gateway, http):
    async with http.get(gateway.url + "/api/v1/indicators") as response:
        etag = response.headers["ETag"]
    async with http.get(gateway.url + "/api/v1/indicators", headers={"If-None-Match": etag}) as response:
        assert response.status == 304 and response.headers["ETag"] == etag


async def test_csv_has_one_row_per_cell_of_the_filtered_region(gateway, http):
    async with http.get(gateway.url + "/api/v1/indicators", params={"format": "csv", "region": "75"}) as response:
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert rows and {row["region"] for row in rows if row["category"] == ""} == {"75"}


@pytest.mark.parametrize(("params", "detail"), [
    ({"region": "Almaty"}, "valid: KZ, 00, 10"),
    ({"to": "2099Q1"}, "has not begun"),
    ({"from": "2024-13"}, "write it as 2026Q4"),
    ({"format": "xml"}, "json or csv"),
    ({"colour": "red"}, "unknown parameters: colour"),
])
async def test_a_bad_filter_is_400_saying_what_is_valid(gateway, http, params, detail):
    async with http.get(gateway.url + "/api/v1/indicators", params=params) as response:
        assert response.status == 400
        assert detail in (await response.json())["detail"]


def test_the_command_line_prints_the_published_indicators(tmp_path, capsys):
    config = make_config(tmp_path / "config", receiver_url="http://127.0.0.1:9")

    async def seed():
        store = create_store(config.store.url, base_dir=config.base_dir)
        await store.open()
        await store.apply(seed_commands(), 0)
        await store.close()

    asyncio.run(seed())
    assert main(["indicators", "--config", str(tmp_path / "config"), "--format", "csv", "--region", "55",
                 "--from", "2024Q1", "--to", "2024Q1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["denominator"] for row in rows if row["indicator"] == "reoffence_36m"} == {"<5"}
    assert main(["indicators", "--config", str(tmp_path / "config"), "--region", "99"]) == 2
