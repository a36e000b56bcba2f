"""The generated purchases CSV as Parquet, the way a data lake holds it (issue 16's ingest bar).

Usage: python scale_parquet.py PURCHASES.csv OUT_DIR

Writes OUT_DIR/{strings,dict,plain,ints}/purchases (each file named `purchases` in a folder of
its own: a model records its source's name, so the models of the CSV and the Parquet files
compare with cmp) and OUT_DIR/ints.csv, the CSV export of the integer-id rows. Every file has
the CSV's columns and rows in order: pyarrow's writer defaults (snappy, row groups of
1,048,576 rows, dictionary-encoded pages with the 1 MiB dictionary page limit, the Arrow schema
stored), with

- strings: ids as strings (`string` columns);
- dict: ids as `dictionary<int32, string>` columns (read back as dictionary arrays);
- plain: ids as strings, dictionary encoding off (`use_dictionary=False`);
- ints: ids as integers without their prefix (customer int64, item int32).

quantity is int64, price double, timestamp `timestamp[s]`, basket_id a string.
"""

import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def main(src, out):
    types = {
        "customer_id": pa.string(),
        "item_id": pa.string(),
        "basket_id": pa.string(),
        "quantity": pa.int64(),
        "price": pa.float64(),
        "timestamp": pa.timestamp("s"),
    }
    t = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types=types))

    def write(name, table, **kw):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        pq.write_table(table, os.path.join(d, "purchases"), **kw)

    write("strings", t)
    write("plain", t, use_dictionary=False)
    dict_cols = {c: pc.dictionary_encode(t[c]) for c in ("customer_id", "item_id")}
    write("dict", t.set_column(0, "customer_id", dict_cols["customer_id"]).set_column(1, "item_id", dict_cols["item_id"]))
    del dict_cols
    ints = t.set_column(0, "customer_id", pc.cast(pc.utf8_slice_codeunits(t["customer_id"], 1), pa.int64()))
    ints = ints.set_column(1, "item_id", pc.cast(pc.utf8_slice_codeunits(t["item_id"], 1), pa.int32()))
    write("ints", ints)
    # The same rows as CSV (times as the generator writes them), for the model bytes.
    times = pc.strftime(ints["timestamp"], format="%Y-%m-%d %H:%M:%S")
    pacsv.write_csv(
        ints.set_column(5, "timestamp", times),
        os.path.join(out, "ints.csv"),
        pacsv.WriteOptions(quoting_style="none"),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
