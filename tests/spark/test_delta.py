"""The Delta facade: the delta-rs fallback fully, the native backend where the jar is present."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import functions as F

from sparkhtr.errors import TableError
from sparkhtr.io import _delta_rs
from sparkhtr.io.delta import (
    delta_backend,
    read_delta,
    register_tables,
    replace_groups,
    table_exists,
    write_delta,
)

TYPED_SCHEMA = (
    "s string, i int, l long, d double, ts timestamp, b boolean, "
    "st struct<a:int,b:string>, pts array<struct<x:double,y:double>>, bin binary"
)
UTC = dt.timezone.utc


def typed_rows() -> list[tuple]:
    return [
        ("alpha", 1, 2**40, 0.5, dt.datetime(2024, 5, 1, 12, 30, 0, 250, tzinfo=UTC), True,
         (7, "x"), [(1.0, 2.0), (3.5, -4.0)], b"\x00\xff"),
        ("βeta", -3, -1, float("nan"), dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), False,
         (None, "y"), [], b""),
        (None, None, None, None, None, None, None, None, None),
    ]  # fmt: skip


def parquet_files(path: Path) -> set[str]:
    return {str(p) for p in path.rglob("*.parquet")}


def settled_parquet_files(path: Path, expected: set[str], seconds: float = 3.0) -> set[str]:
    """Parquet files under ``path`` once they equal ``expected`` or ``seconds`` passed.

    Spark fails the job before its killed sibling tasks have stopped; a task that
    was mid-write deletes its own file a moment later.
    """
    deadline = time.monotonic() + seconds
    while (found := parquet_files(path)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


@pytest.fixture
def delta_rs_only(spark):
    if delta_backend(spark) != "delta-rs":
        pytest.skip("tests the delta-rs fallback; this session has the Delta jar")


@pytest.fixture
def native_only(spark):
    if delta_backend(spark) != "native":
        pytest.skip("needs the Delta jar (io.delta.tables.DeltaTable) and a Delta-configured session")


def test_backend_is_delta_rs_without_the_jar(spark):
    from sparkhtr.io.delta import _jar_loaded

    expected = "native" if _jar_loaded(spark) and "Delta" in spark.conf.get("spark.sql.extensions", "") else "delta-rs"
    assert delta_backend(spark) == expected
    assert delta_backend(spark) is delta_backend(spark)  # cached per session


def test_round_trip_keeps_types_values_and_is_valid_delta(spark, tmp_path, delta_rs_only):
    df = spark.createDataFrame(typed_rows(), TYPED_SCHEMA)
    path = tmp_path / "typed"

    assert write_delta(df, str(path)) == 3

    back = read_delta(spark, str(path))
    assert back.schema == _delta_rs.as_nullable(df.schema)
    assert sorted(map(repr, back.collect())) == sorted(map(repr, df.collect()))
    table = DeltaTable(str(path))
    arrow = pa.table(table.to_pyarrow_table())
    assert arrow.num_rows == 3 and arrow.column_names == df.columns
    assert table.count() == 3  # from the add actions' numRecords
    stats = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    with_rows = [s for s in stats if s["num_records"]]
    assert min(s["min.l"] for s in with_rows if s["min.l"] is not None) == -1
    assert sum(s["null_count.st.a"] for s in stats) == 2  # a null field and a null struct


def test_append_adds_one_version_and_overwrite_replaces(spark, tmp_path, delta_rs_only):
    path = str(tmp_path / "t")
    assert write_delta(spark.range(3), path) == 3
    assert write_delta(spark.range(3, 5), path, mode="append") == 2
    assert DeltaTable(path).version() == 1
    assert read_delta(spark, path).count() == 5

    assert write_delta(spark.range(10, 12), path, mode="overwrite") == 2
    assert DeltaTable(path).version() == 2
    assert sorted(r.id for r in read_delta(spark, path).collect()) == [10, 11]
    assert DeltaTable(path).to_pyarrow_table().num_rows == 2


def test_schema_mismatch_raises_and_merge_schema_adds_columns(spark, tmp_path, delta_rs_only):
    path = str(tmp_path / "t")
    write_delta(spark.createDataFrame([(1, "a")], "id long, name string"), path)

    with pytest.raises(TableError, match=r"column id: table has bigint, data has int"):
        write_delta(spark.createDataFrame([(2, "b")], "id int, name string"), path)
    with pytest.raises(TableError, match=r"missing column name string"):
        write_delta(spark.range(1), path)
    with pytest.raises(TableError, match=r"new columns score double .*merge_schema"):
        write_delta(spark.createDataFrame([(2, "b", 0.5)], "id long, name string, score double"), path)
    with pytest.raises(TableError, match=r"data has int"):
        write_delta(spark.createDataFrame([(2, "b")], "id int, name string"), path, mode="overwrite")
    assert DeltaTable(path).version() == 0

    # column order does not matter; new nullable columns join with merge_schema
    more = spark.createDataFrame([(0.5, "b", 2)], "score double, name string, id long")
    assert write_delta(more, path, merge_schema=True) == 1
    back = read_delta(spark, path)
    assert back.columns == ["id", "name", "score"]
    assert sorted(back.collect()) == [(1, "a", None), (2, "b", 0.5)]


def test_many_tasks_commit_one_version(spark, tmp_path, delta_rs_only):
    path = str(tmp_path / "t")
    assert write_delta(spark.range(30).repartition(3), path) == 30
    table = DeltaTable(path)
    assert table.version() == 0
    assert len(table.file_uris()) >= 3
    assert table.count() == 30


def test_failed_task_leaves_table_unchanged(spark, tmp_path, delta_rs_only):
    path = tmp_path / "t"
    write_delta(spark.range(4), str(path))
    before = parquet_files(path)

    @F.udf("long")
    def fail_on_seven(x):
        if x == 7:
            raise ValueError("injected task failure")
        return x

    failing = spark.range(0, 12, numPartitions=3).select(fail_on_seven("id").alias("id"))
    with pytest.raises(Exception, match="injected task failure"):
        write_delta(failing, str(path))

    table = DeltaTable(str(path))
    assert table.version() == 0
    assert table.count() == 4
    assert before == set(table.file_uris())
    assert settled_parquet_files(path, before) == before  # abort removed the attempt's files


def test_empty_dataframe_creates_table_and_appends_nothing(spark, tmp_path, delta_rs_only):
    path = str(tmp_path / "t")
    empty = spark.createDataFrame([], "id long, pts array<struct<x:double,y:double>>")

    assert write_delta(empty, path) == 0
    assert table_exists(path) and DeltaTable(path).version() == 0
    back = read_delta(spark, path)
    assert back.count() == 0 and back.schema == _delta_rs.as_nullable(empty.schema)

    assert write_delta(empty, path) == 0
    assert DeltaTable(path).version() == 0  # no empty version
    assert DeltaTable(path).to_pyarrow_table().num_rows == 0


def test_partitioned_tables_registered_for_sql(spark, tmp_path, delta_rs_only):
    lines = spark.createDataFrame(
        [("p1", 0, "a/b c"), ("p1", 1, None), ("p2", 0, "k"), ("p2", 1, "k")], "path string, line int, kind string"
    )
    write_delta(lines, str(tmp_path / "lines"), partition_by=["kind"])
    write_delta(spark.createDataFrame([("p1",), ("p2",)], "path string"), str(tmp_path / "pages"))
    with pytest.raises(TableError, match="partitioned by"):
        write_delta(lines, str(tmp_path / "lines"), partition_by=["path"])

    assert register_tables(spark, str(tmp_path)) == ["pages", "lines"]
    rows = spark.sql(
        "SELECT kind, count(*) AS n FROM lines JOIN pages USING (path) GROUP BY kind ORDER BY kind NULLS FIRST"
    ).collect()
    assert [tuple(r) for r in rows] == [(None, 1), ("a/b c", 1), ("k", 2)]
    assert DeltaTable(str(tmp_path / "lines")).to_pyarrow_table().num_rows == 4


def test_missing_table_raises(spark, tmp_path):
    assert not table_exists(str(tmp_path / "nothing"))
    with pytest.raises(TableError, match="no Delta table"):
        read_delta(spark, str(tmp_path / "nothing"))
    with pytest.raises(TableError, match="mode"):
        write_delta(spark.range(1), str(tmp_path / "x"), mode="ignore")


def test_commit_rejects_a_table_changed_during_the_write(spark, tmp_path, delta_rs_only):
    path = str(tmp_path / "t")
    write_delta(spark.range(2), path)
    first_files = set(DeltaTable(path).file_uris())

    @F.udf("long")
    def change_table(x):
        # another writer replaces the schema while this job runs
        write_deltalake(path, pa.table({"id": ["x"]}), mode="overwrite", schema_mode="overwrite")
        return x

    with pytest.raises(TableError, match="changed during the write: column id: table has string"):
        write_delta(spark.range(1, numPartitions=1).select(change_table("id").alias("id")), path)
    table = DeltaTable(path)
    assert table.version() == 1 and table.to_pyarrow_table().column("id").to_pylist() == ["x"]
    expected = first_files | set(table.file_uris())
    assert settled_parquet_files(tmp_path / "t", expected) == expected  # abort removed ours


# --- native backend (Delta jar on the classpath) --------------------------------------


def test_native_round_trip_and_sql(spark, tmp_path, native_only):
    path = tmp_path / "lines"
    df = spark.createDataFrame(typed_rows(), TYPED_SCHEMA)
    write_delta(df, str(path))
    write_delta(df, str(path), mode="append")
    assert read_delta(spark, str(path)).count() == 6
    assert DeltaTable(str(path)).version() == 1
    with pytest.raises(TableError):
        write_delta(spark.range(1), str(path))
    assert register_tables(spark, str(tmp_path)) == ["lines"]
    assert spark.sql("SELECT count(*) FROM lines").first()[0] == 6


# --- replace_groups: the MERGE behind rerun-safe writes (same semantics on both backends) ---

LINE_SCHEMA = "path string, page int, line int, text string, bbox struct<x0:int,y0:int>, at timestamp"
AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def lines(rows: list[tuple[str, int, int, str]]):
    return [(p, pg, ln, text, (ln, pg), AT) for p, pg, ln, text in rows]


def table_rows(spark, path: Path) -> list[tuple]:
    df = read_delta(spark, str(path))
    return sorted((r.path, r.page, r.line, r.text) for r in df.collect())


KEYS = ["path", "page", "line"]


def test_replace_groups_creates_replaces_and_deletes_stale_rows(spark, tmp_path):
    path = tmp_path / "lines"
    first = spark.createDataFrame(lines([("a", 1, 0, "a0"), ("a", 1, 1, "a1"), ("a", 2, 0, "a20"), ("b", 1, 0, "b0")]),
                                  LINE_SCHEMA)
    assert replace_groups(first, str(path), keys=KEYS)["inserted"] == 4
    version = DeltaTable(str(path)).version()
    # File a changed: page 1 lost a line, page 2 vanished, a new line appeared; b untouched.
    second = spark.createDataFrame(lines([("a", 1, 0, "A0"), ("a", 1, 5, "A5")]), LINE_SCHEMA)
    counts = replace_groups(second, str(path), keys=KEYS, groups=["a"])
    assert table_rows(spark, path) == [("a", 1, 0, "A0"), ("a", 1, 5, "A5"), ("b", 1, 0, "b0")]
    assert DeltaTable(str(path)).version() == version + 1  # one atomic version
    if delta_backend(spark) == "delta-rs":
        assert counts == {"inserted": 1, "updated": 1, "deleted": 2}


def test_replace_groups_clears_a_listed_group_with_no_rows_and_keeps_others(spark, tmp_path):
    path = tmp_path / "lines"
    replace_groups(spark.createDataFrame(lines([("a", 1, 0, "a0"), ("b", 1, 0, "b0")]), LINE_SCHEMA), str(path),
                   keys=KEYS)
    empty = spark.createDataFrame([], LINE_SCHEMA)
    replace_groups(empty, str(path), keys=KEYS, groups=["a", "never-seen"])
    assert table_rows(spark, path) == [("b", 1, 0, "b0")]


def test_replace_groups_twice_with_the_same_rows_is_idempotent(spark, tmp_path):
    path = tmp_path / "lines"
    df = spark.createDataFrame(lines([("a", 1, i, f"t{i}") for i in range(5)]), LINE_SCHEMA)
    replace_groups(df, str(path), keys=KEYS)
    replace_groups(df, str(path), keys=KEYS)
    assert len(table_rows(spark, path)) == 5
    assert read_delta(spark, str(path)).groupBy(*KEYS).count().where("count > 1").count() == 0


def test_replace_groups_rejects_repeated_keys_and_schema_conflicts(spark, tmp_path, delta_rs_only):
    path = tmp_path / "lines"
    replace_groups(spark.createDataFrame(lines([("a", 1, 0, "x")]), LINE_SCHEMA), str(path), keys=KEYS)
    twice = spark.createDataFrame(lines([("a", 1, 0, "x"), ("a", 1, 0, "y")]), LINE_SCHEMA)
    with pytest.raises(TableError, match="repeat"):
        replace_groups(twice, str(path), keys=KEYS)
    conflicting = spark.createDataFrame([("a", 1, 0, 3.5)], "path string, page int, line int, text double")
    with pytest.raises(TableError, match="column text: table has string, data has double"):
        replace_groups(conflicting, str(path), keys=KEYS)
    assert table_rows(spark, path) == [("a", 1, 0, "x")]


def test_replace_groups_adds_new_columns_only_when_asked(spark, tmp_path):
    path = tmp_path / "runs"
    replace_groups(spark.createDataFrame([("r1", 1)], "run_id string, files long"), str(path), keys=["run_id"],
                   group_column="run_id")
    wider = spark.createDataFrame([("r2", 2, "ok")], "run_id string, files long, status string")
    with pytest.raises(TableError, match="merge_schema=True"):
        replace_groups(wider, str(path), keys=["run_id"], group_column="run_id")
    replace_groups(wider, str(path), keys=["run_id"], group_column="run_id", merge_schema=True)
    rows = sorted(tuple(r) for r in read_delta(spark, str(path)).collect())
    assert rows == [("r1", 1, None), ("r2", 2, "ok")]
