"""Reading and replacing date partitions of the lake through Spark (works for local paths and s3a)."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession


def path_exists(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hadoop_path)


def replace_partition(df: DataFrame, path: str, files: int | None = None) -> None:
    """Overwrite one date folder with `df` (without its event_date column: the folder name carries it).

    Writing the folder itself, not a dynamic partition overwrite of the parent, also empties a
    partition whose rerun produced no rows."""
    out = df.drop("event_date")
    if files:
        out = out.coalesce(files)
    out.write.mode("overwrite").parquet(path)


def read_partition(spark: SparkSession, path: str) -> DataFrame | None:
    """The rows of one date folder, or None when it was never written."""
    return spark.read.parquet(path) if path_exists(spark, path) else None
