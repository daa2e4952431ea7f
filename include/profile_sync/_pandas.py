"""pandas settings of the engine, applied by every package that builds frames.

pandas 3 infers the "str" dtype for text; with pyarrow storage its isin/isna/merge
on 100k identifiers are ~10x slower than on Python objects (isin builds a pyarrow
scalar per element). Python storage keeps the same dtype semantics and the fast
hash-table paths. Importing pandas here (not in ``profile_sync/__init__``) keeps
``profile_sync.config`` light enough for DAG parsing.
"""

import pandas as pd

pd.set_option("mode.string_storage", "python")
