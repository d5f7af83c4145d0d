"""The walking skeleton end to end: import real and synthetic exports, build, query — with counts checked against
the input files, read independently of tunelake's parser."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

EXTENDED = ["Efrrowini__spotify-music-analysis", "CandidlyRed__spotify"]


def _independent_counts(files: list[Path]) -> dict[str, int]:
    """What the files hold, by plain json: rows, distinct playbacks, music and episode playbacks, ms_played."""
    rows = 0
    seen: dict[tuple, dict] = {}
    for f in files:
        for r in json.loads(f.read_text()):
            rows += 1
            key = (r["ts"], r.get("spotify_track_uri") or r.get("spotify_episode_uri") or
                   (r.get("master_metadata_track_name"), r.get("episode_name")), r["ms_played"])
            seen.setdefault(key, r)
    music = [r for r in seen.values() if r.get("spotify_track_uri")]
    episodes = [r for r in seen.values() if r.get("spotify_episode_uri")]
    return {
        "rows": rows,
        "distinct": len(seen),
        "music": len(music),
        "episodes": len(episodes),
        "music_ms": sum(r["ms_played"] for r in music),
        "streams": sum(1 for r in music if r["ms_played"] >= 30_000),
    }


def _run(*args: str, ws: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelake.cli", "-w", str(ws), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def real_ws(tmp_path_factory, real_dir):
    ws = tmp_path_factory.mktemp("real-ws")
    cfg = open_workspace(ws)
    summaries = {d: import_paths(cfg, [str(real_dir / d)], d.split("__")[0].lower()) for d in EXTENDED}
    build(cfg)
    return cfg, summaries


@pytest.mark.parametrize("folder", EXTENDED)
def test_real_extended_history_counts_match_files(real_ws, real_dir, folder):
    cfg, summaries = real_ws
    files = sorted((real_dir / folder).glob("*.json"))
    expected = _independent_counts(files)
    s = summaries[folder].as_dict()
    assert s["read"] == expected["rows"]
    assert s["accepted"] == expected["distinct"]
    assert s["read"] == s["accepted"] + s["duplicates"] + sum(s["quarantined"].values())
    assert s["quarantined"] == {}
    handle = folder.split("__")[0].lower()
    con = open_warehouse(cfg)
    try:
        n, ms, streams = con.execute(
            "SELECT count(*), sum(ms_played), sum(is_stream::INT) FROM fact_play JOIN dim_user USING (user_key) "
            "WHERE handle = ?", [handle]).fetchone()
        episodes = con.execute("SELECT count(*) FROM fact_episode_play JOIN dim_user USING (user_key) "
                               "WHERE handle = ?", [handle]).fetchone()[0]
    finally:
        con.close()
    assert n == expected["music"]
    assert ms == expected["music_ms"]
    assert streams == expected["streams"]
    assert episodes == expected["episodes"]


def test_endsong_exact_duplicate_and_pii(real_ws, real_dir):
    cfg, summaries = real_ws
    data = json.loads((real_dir / "CandidlyRed__spotify" / "endsong.json").read_text())
    exact = sum(v - 1 for v in Counter(json.dumps(r, sort_keys=True) for r in data).values())
    assert exact >= 1
    assert summaries["CandidlyRed__spotify"].total("duplicates") >= exact
    # Personal fields never reach the curated zone in clear (dropped by default).
    con = duckdb.connect()
    curated = str(Path(cfg.lake_url) / "curated" / "plays" / "**" / "*.parquet")
    ips, agents, users = con.execute(
        f"SELECT count(ip_addr), count(user_agent), count(username) FROM read_parquet('{curated}')").fetchone()
    assert (ips, agents, users) == (0, 0, 0)
    raw_ips = {r["ip_addr_decrypted"] for r in data}
    text = b"".join(p.read_bytes() for p in (Path(cfg.lake_url) / "curated").rglob("*.parquet"))
    assert not any(ip.encode() in text for ip in raw_ips if ip)


def test_reimport_and_rebuild_add_nothing(real_ws, real_dir):
    cfg, _ = real_ws
    con = open_warehouse(cfg)
    before = con.execute("SELECT count(*) FROM fact_play").fetchone()[0]
    con.close()
    again = import_paths(cfg, [str(real_dir / "Efrrowini__spotify-music-analysis")], "efrrowini")
    assert all(f.status == "already imported" for f in again.files)
    assert again.total("accepted") == 0
    info = build(cfg)
    assert info.skipped
    con = open_warehouse(cfg)
    assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] == before
    con.close()


def test_semantics_of_fact_play(real_ws):
    cfg, _ = real_ws
    con = open_warehouse(cfg)
    try:
        bad = con.execute("""
            SELECT count(*) FROM fact_play WHERE
                is_stream <> (ms_played >= 30000)
                OR started_at <> ended_at - to_milliseconds(ms_played)
                OR date_key <> CAST(strftime(timezone('Asia/Kolkata', timezone('UTC', started_at)), '%Y%m%d') AS INT)
                   AND user_key = (SELECT user_key FROM dim_user WHERE handle = 'efrrowini')
        """).fetchone()[0]
        tz = dict(con.execute("SELECT handle, timezone FROM dim_user").fetchall())
        sessions = con.execute("SELECT max(session_id) FROM fact_play").fetchone()[0]
    finally:
        con.close()
    assert bad == 0
    assert tz == {"efrrowini": "Asia/Kolkata", "candidlyred": "America/New_York"}
    assert sessions > 10


def test_synthetic_world_end_to_end(small_world, tmp_path):
    """Every listener imported: fact_play holds exactly the distinct music playbacks the files hold."""
    cfg = open_workspace(tmp_path / "ws")
    expected_music = 0
    for folder in sorted((small_world / "exports").iterdir()):
        ext = [p for p in folder.rglob("*.json") if "Account Data" not in str(p)]
        expected_music += _independent_counts(ext)["music"]
        import_paths(cfg, [str(p) for p in ext], folder.name)
    build(cfg)
    con = open_warehouse(cfg)
    try:
        assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] == expected_music
        assert con.execute("SELECT count(*) FROM dim_user").fetchone()[0] == 14
        # Every fact key is found in its dimension.
        orphans = con.execute("SELECT count(*) FROM fact_play f LEFT JOIN dim_track t USING (track_id) "
                              "WHERE t.track_id IS NULL").fetchone()[0]
        assert orphans == 0
        # Intermediate models lived in a scratch database that is gone: not among the warehouse's tables, not on
        # disk. Only the per-listener summaries incremental builds need are kept, apart, in the `_build` schema.
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
                                            ).fetchall()}
        assert "fact_play" in tables and not any(t.startswith("int_") for t in tables)
        kept = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = '_build' "
                                          "AND table_name LIKE 'int_%'").fetchall()}
        assert kept == {"int_user_track_names", "int_user_date_bounds"}
    finally:
        con.close()
    assert not list(cfg.warehouse_dir.rglob("scratch-*"))


def test_cli_errors_are_one_line(tmp_path):
    ws = tmp_path / "ws"
    bad = tmp_path / "Streaming_History_Audio_2024_0.json"
    bad.write_text('[{"ts": "2024-01-01T00:00:00Z", "ms_played": 1000}, {"ts": ')  # truncated
    r = _run("import", str(bad), "--user", "alice", ws=ws)
    assert r.returncode != 0
    err = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(err) == 1 and "truncated JSON" in err[0] and bad.name in err[0]
    assert "Traceback" not in r.stderr
    r = _run("import", str(tmp_path / "nope.json"), "--user", "alice", ws=ws)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = _run("sql", "select 1", ws=tmp_path / "empty")
    assert r.returncode != 0 and "tunelake build" in r.stderr
    r = _run("import", str(bad), "--user", "../evil", ws=ws)
    assert r.returncode == 2 and "invalid user handle" in r.stderr


def test_bad_records_are_quarantined_and_valid_ones_kept(tmp_path):
    cfg = open_workspace(tmp_path / "ws")
    good = {"ts": "2024-03-01T10:00:00Z", "ms_played": 200000, "spotify_track_uri": "spotify:track:" + "a" * 22,
            "master_metadata_track_name": "Song", "master_metadata_album_artist_name": "Band"}
    records = [
        good,
        {**good, "ts": "2024-03-01T10:05:00Z", "ms_played": "lots"},  # wrong type
        {**good, "ts": "yesterday"},  # bad timestamp
        {**good, "ts": "2099-01-01T00:00:00Z"},  # future
        {**good, "ts": "2024-03-01T10:10:00Z", "ms_played": -5},  # negative
        ["not", "an", "object"],
        {"ms_played": 10},  # no ts
        {**good, "ts": "2024-03-01T10:15:00Z", "spotify_track_uri": "http://x"},  # bad uri
        {**good, "ts": "2024-03-01T10:20:00Z", "extra_field": 1},  # unknown field: kept and reported
    ]
    f = tmp_path / "Streaming_History_Audio_2024_0.json"
    f.write_text(json.dumps(records))
    s = import_paths(cfg, [str(f)], "bob")
    d = s.as_dict()
    assert d["read"] == 9 and d["accepted"] == 2
    assert d["quarantined"] == {"wrong_type": 1, "bad_timestamp": 1, "ts_out_of_range": 1, "negative_ms_played": 1,
                                "not_an_object": 1, "missing_field": 1, "bad_uri": 1}
    assert s.files[0].unknown_fields == ["extra_field"]
    qfile = next((Path(cfg.lake_url) / "quarantine").rglob("*.jsonl"))
    lines = [json.loads(x) for x in qfile.read_text().splitlines()]
    assert sorted(q["record_no"] for q in lines) == [1, 2, 3, 4, 5, 6, 7]
    # the file is named relative to the folder it was imported from: no absolute path is kept in the lake
    assert all(q["file"] == f.name and q["reason"] for q in lines)


@pytest.mark.parametrize("ts_30", ["deleted", "null"])
def test_fast_and_exact_parsers_agree(real_dir, monkeypatch, ts_30):
    """The DuckDB fast path and the record-by-record path give the same rows and the same quarantine — through the
    uniform pass when every record has the same keys (a null ts), through the typed read + key scan when one
    record lacks a key."""
    from tunelake.sources import extended_fast
    from tunelake.sources.export import EXTENDED_FIELDS, parse_extended

    scans = []
    real_scan = extended_fast._file_keys
    monkeypatch.setattr(extended_fast, "_file_keys", lambda *a: scans.append(1) or real_scan(*a))
    records = json.loads((real_dir / "CandidlyRed__spotify" / "endsong.json").read_text())[:200]
    records[3]["ms_played"] = -1
    records[10]["ts"] = "2031-13-40T00:00:00Z"
    records[11]["ts"] = "2001-01-01T00:00:00Z"
    records[20]["spotify_track_uri"] = "spotify:album:xyz"
    if ts_30 == "deleted":
        del records[30]["ts"]
    else:
        records[30]["ts"] = None
    data = json.dumps(records).encode()
    fast = extended_fast.parse_extended_fast(data, "endsong_0.json", EXTENDED_FIELDS)
    exact = parse_extended(data, "endsong_0.json", fast=False)
    assert fast is not None
    assert len(scans) == (1 if ts_30 == "deleted" else 0)
    assert fast.read == exact.read == 200
    assert fast.file_format == exact.file_format == "endsong"
    assert [(q["record_no"], q["reason"]) for q in fast.quarantine] == [
        (q["record_no"], q["reason"]) for q in exact.quarantine] == [
        (3, "negative_ms_played"), (10, "bad_timestamp"), (11, "ts_out_of_range"), (20, "bad_uri"),
        (30, "missing_field" if ts_30 == "deleted" else "wrong_type")]
    if ts_30 == "null":
        assert fast.quarantine[-1]["message"] == exact.quarantine[-1]["message"] == "field 'ts' is null"
    assert fast.rows.column_names == exact.rows.column_names
    for col in fast.rows.column_names:
        assert fast.rows[col].to_pylist() == exact.rows[col].cast(fast.rows[col].type).to_pylist(), col


def test_fast_path_falls_back_on_wrong_types(real_dir):
    """A string where a number belongs fails the uniform pass and the typed read alike: the exact path decides."""
    from tunelake.sources.export import EXTENDED_FIELDS
    from tunelake.sources.extended_fast import parse_extended_fast

    records = json.loads((real_dir / "CandidlyRed__spotify" / "endsong.json").read_text())[:50]
    assert parse_extended_fast(json.dumps(records).encode(), "endsong_0.json", EXTENDED_FIELDS).read == 50
    records[5]["ms_played"] = "a lot"
    assert parse_extended_fast(json.dumps(records).encode(), "endsong_0.json", EXTENDED_FIELDS) is None


def test_fast_path_reports_unknown_fields_in_spotify_layout(real_dir):
    """Unknown keys are found whether the cheap key count or the exact json_keys scan settles it."""
    import orjson

    from tunelake.sources.export import EXTENDED_FIELDS
    from tunelake.sources.extended_fast import parse_extended_fast

    records = json.loads((real_dir / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2022.json")
                         .read_text())
    pretty = orjson.dumps(records, option=orjson.OPT_INDENT_2)
    assert parse_extended_fast(pretty, "a.json", EXTENDED_FIELDS).unknown_fields == set()
    records[7]["new_field_2027"] = "x"
    for data in (orjson.dumps(records, option=orjson.OPT_INDENT_2), orjson.dumps(records)):
        parsed = parse_extended_fast(data, "a.json", EXTENDED_FIELDS)
        assert parsed.unknown_fields == {"new_field_2027"} and parsed.read == len(records)
    records[7].pop("ip_addr")  # one key missing, one unknown: the count matches, the exact scan must still run
    parsed = parse_extended_fast(orjson.dumps(records, option=orjson.OPT_INDENT_2), "a.json", EXTENDED_FIELDS)
    assert parsed.unknown_fields == {"new_field_2027"}
    records[7]["ip_addr"] = None
    del records[7]["new_field_2027"]
    records[-1]["also_new"] = None  # an unknown key whose value is null, in the last record only
    parsed = parse_extended_fast(orjson.dumps(records), "a.json", EXTENDED_FIELDS)
    assert parsed.unknown_fields == {"also_new"} and parsed.read == len(records)
    records[0]["first_new"] = 1  # in the first record: the uniform pass does not apply
    parsed = parse_extended_fast(orjson.dumps(records), "a.json", EXTENDED_FIELDS)
    assert parsed.unknown_fields == {"also_new", "first_new"}


def test_parallel_import_equals_one_by_one(small_world, tmp_path):
    """import_many (one process per core) stores exactly what importing listeners one after another stores."""
    import pyarrow.compute as pc

    from tunelake.curate.parallel import import_many
    from tunelake.curate.plays import read_user_plays
    from tunelake.lake import manifest

    jobs = [(d.name, [str(d)]) for d in sorted((small_world / "exports").iterdir())][:6]
    seq_cfg, par_cfg = open_workspace(tmp_path / "seq"), open_workspace(tmp_path / "par")
    seq = [import_paths(seq_cfg, paths, h) for h, paths in jobs]
    import os

    from tunelake.duck import cursor, import_threads

    par = import_many(par_cfg, jobs, workers=2)
    # This process imported beside the worker with one DuckDB thread; afterwards its setting is what it was.
    assert import_threads() == (par_cfg.settings.import_threads or os.cpu_count())
    assert cursor().execute("SELECT current_setting('threads')").fetchall()[0][0] == import_threads()
    assert [s.as_dict()["accepted"] for s in par] == [s.as_dict()["accepted"] for s in seq]
    assert [s.as_dict()["merged"] for s in par] == [s.as_dict()["merged"] for s in seq] and par[0].total("merged") > 0
    for h, _ in jobs:
        a = read_user_plays(seq_cfg.lake, manifest.user_key_for(h))
        b = read_user_plays(par_cfg.lake, manifest.user_key_for(h))
        assert a.num_rows == b.num_rows > 0
        assert sorted(a["play_id"].to_pylist()) == sorted(b["play_id"].to_pylist())
        assert pc.sum(a["ms_played"]).as_py() == pc.sum(b["ms_played"]).as_py()
    users = par_cfg.lake.read_parquet("curated/users/data.parquet")
    assert sorted(users["handle"].to_pylist()) == [h for h, _ in jobs]
    # The name index the workers' contributions add up to is the one sequential imports write, key for key (the
    # weights may differ: sequentially, account rows of later listeners also resolve against earlier listeners).
    order = [(c, "ascending") for c in ("kind", "item_id", "first", "second")]
    seq_index = seq_cfg.lake.read_parquet("curated/_name_index/data.parquet").sort_by(order).drop(["weight"])
    par_index = par_cfg.lake.read_parquet("curated/_name_index/data.parquet").sort_by(order).drop(["weight"])
    assert par_index.num_rows == seq_index.num_rows > 100
    assert par_index.to_pylist() == seq_index.to_pylist()


def test_the_prepared_parse_reads_each_file_and_user_afresh(real_dir):
    """The uniform pass is prepared once per layout and reads whatever file is current: files of one layout parsed
    in turn, for different users, each give what the record-by-record path gives, with that user's playback ids."""
    import concurrent.futures

    import pyarrow as pa

    from tunelake.curate import plays as curated_plays
    from tunelake.sources import extended_fast
    from tunelake.sources.export import parse_extended

    folder = real_dir / "Efrrowini__spotify-music-analysis"
    audio = sorted(folder.glob("Streaming_History_Audio_*.json"))
    runs = [(audio[0], 11), (audio[1], 22), (audio[0], 22), (folder / "Streaming_History_Video_2023.json", 11)]
    prepared: list[int] = []

    def parse_in_turn() -> None:  # in a thread of its own: a connection (and statements) of its own
        for f, user in runs:
            data = f.read_bytes()
            fast = parse_extended(data, f.name, user_key=user)
            exact = parse_extended(data, f.name, fast=False)
            assert fast.read == exact.read > 0
            for col in exact.rows.column_names:
                assert fast.rows[col].to_pylist() == exact.rows[col].cast(fast.rows[col].type).to_pylist(), (f, col)
            rows = exact.rows.append_column("user_key", pa.array([user] * exact.rows.num_rows, pa.int64()))
            assert fast.rows["play_id"].to_pylist() == curated_plays._play_ids(curated_plays.conform(rows)).to_pylist()
        prepared.append(len(extended_fast._local.prepared))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(parse_in_turn).result()
    assert prepared == [2]  # one statement per layout (audio, video), not one per file


def test_record_numbers_follow_the_file_on_many_threads(real_dir, monkeypatch):
    """Record numbers are row positions, so the parse must keep file order even when DuckDB reads a large file
    (here ~40 MB, 90,000 records) on several threads; each record's own ts says where it was."""
    import concurrent.futures
    from datetime import datetime, timedelta

    from tunelake.sources.export import parse_extended

    base = json.loads((real_dir / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2023.json")
                      .read_text())
    start = datetime(2015, 1, 1)
    records = [{**base[i % len(base)], "ts": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ms_played": i} for i in range(90_000)]
    records[45_000]["ms_played"] = -5  # one quarantined record: its number must be its position too
    data = json.dumps(records).encode()
    from tunelake import duck

    duck.set_import_threads(4)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a thread of its own: a 4-thread connection
            parsed = pool.submit(parse_extended, data, "Streaming_History_Audio_2015.json", user_key=5).result()
    finally:
        duck.set_import_threads(0)
    assert parsed.read == 90_000
    assert [(q["record_no"], q["reason"]) for q in parsed.quarantine] == [(45_000, "negative_ms_played")]
    assert parsed.quarantine[0]["record"]["ms_played"] == -5
    want = [i for i in range(90_000) if i != 45_000]
    assert parsed.rows["record_no"].to_pylist() == want
    assert parsed.rows["ms_played"].to_pylist() == want


def test_a_spawned_import_worker_runs_without_pandas():
    """Spawned import workers keep pandas out (pyarrow would import it with the first array, ~0.15 s each): arrays,
    Parquet and DuckDB still work there, and an explicit `import pandas` fails instead of loading it."""
    import subprocess
    import sys

    code = (
        "import sys, io\n"
        "from tunelake.curate.parallel import _init_spawned_worker\n"
        "_init_spawned_worker()\n"
        "import pyarrow as pa, pyarrow.parquet as pq, duckdb\n"
        "t = pa.table({'a': pa.array([1, 2, 3], pa.int64())})\n"
        "b = io.BytesIO(); pq.write_table(t, b); b.seek(0)\n"
        "assert pq.read_table(b)['a'].to_pylist() == [1, 2, 3]\n"
        "assert duckdb.sql('SELECT sum(a) FROM t').fetchall() == [(6,)]\n"
        "try:\n    import pandas\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('pandas loaded')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_curated_partition_keeps_the_statistics_readers_prune_on(small_world, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tunelake.lake import manifest, zones

    cfg = open_workspace(tmp_path / "ws")
    user = sorted((small_world / "exports").iterdir())[0]
    import_paths(cfg, [str(user)], user.name)
    lake = cfg.lake
    path = lake.path(zones.curated_user_file("plays", manifest.user_key_for(user.name)))
    meta, table = pq.ParquetFile(path).metadata, pq.read_table(path)
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    stats = {n: meta.row_group(0).column(i).statistics for i, n in enumerate(names)}
    assert stats["ended_at"].has_min_max and stats["user_key"].has_min_max
    assert stats["ended_at"].min == pc.min(table["ended_at"]).as_py()
    assert stats["ended_at"].max == pc.max(table["ended_at"]).as_py()
    assert stats["track_name"] is None or not stats["track_name"].has_min_max  # never pruned on: not written
    assert table["ended_at"].to_pylist() == sorted(table["ended_at"].to_pylist())


@pytest.mark.parametrize("folder", ["Efrrowini__spotify-music-analysis", "CandidlyRed__spotify"])
def test_play_ids_from_the_parse_equal_the_merge_ones(real_dir, folder):
    """The fast parse computes playback ids for a known user in the same pass; they must be the ids the merge
    computes from the curated columns, or a re-import through the other path would duplicate every play."""
    import pyarrow as pa

    from tunelake.curate import plays as curated_plays
    from tunelake.sources.export import parse_extended

    f = sorted((real_dir / folder).glob("*.json"))[0]
    parsed = parse_extended(f.read_bytes(), f.name, user_key=4242)
    assert "play_id" in parsed.rows.column_names and parsed.rows["play_id"].null_count == 0
    rows = parsed.rows.append_column("user_key", pa.array([4242] * parsed.rows.num_rows, pa.int64()))
    fresh = curated_plays.conform(rows.drop_columns(["play_id"]))
    assert fresh["play_id"].null_count == fresh.num_rows  # so the merge computes them itself
    assert curated_plays._play_ids(fresh).to_pylist() == parsed.rows["play_id"].to_pylist()
    assert len(set(parsed.rows["play_id"].to_pylist())) > 0.9 * parsed.rows.num_rows
