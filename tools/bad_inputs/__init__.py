"""The bad-input catalogue: one module per area (`data`, `export`, `train`), each a list `CASES`
of `common.Case`; `tools/bad_input_catalogue.py` runs them against the installed command."""
