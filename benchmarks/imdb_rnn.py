"""IMDB sentiment with the default BiLSTM recipe: validation accuracy and time per epoch.

Trains on ../shared/data/imdb/train.csv (25,000 reviews; 5,000 held out for validation) with
benchmarks/configs/imdb_bilstm.yaml through `tfrnn.training.train`, the same code path as
`tfrnn train`, and writes the figures into docs/benchmarks.md.

    python benchmarks/imdb_rnn.py --markdown docs/benchmarks.md
    python benchmarks/imdb_rnn.py model.rnn.cell=gru      # any dotted override
"""

import recipe

if __name__ == "__main__":
    recipe.main(
        description=__doc__.split("\n\n")[0],
        key="imdb_rnn",
        title="IMDB, default BiLSTM recipe (`benchmarks/imdb_rnn.py`)",
        recipe=recipe.HERE / "configs" / "imdb_bilstm.yaml",
        data_overrides=[f"data.path={recipe.SHARED_DATA / 'imdb' / 'train.csv'}"],
    )
