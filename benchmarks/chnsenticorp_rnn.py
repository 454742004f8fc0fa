"""ChnSentiCorp (Chinese reviews) in character mode: validation and dev accuracy.

Trains on ../shared/data/chnsenticorp/train.csv (9,600 reviews; 10% held out for validation)
and tests on dev.csv (1,200) with benchmarks/configs/chnsenticorp_bilstm.yaml.

    python benchmarks/chnsenticorp_rnn.py --markdown docs/benchmarks.md
"""

import recipe

if __name__ == "__main__":
    data = recipe.SHARED_DATA / "chnsenticorp"
    recipe.main(
        description=__doc__.split("\n\n")[0],
        key="chnsenticorp_rnn",
        title="ChnSentiCorp, character BiLSTM (`benchmarks/chnsenticorp_rnn.py`)",
        recipe=recipe.HERE / "configs" / "chnsenticorp_bilstm.yaml",
        data_overrides=[f"data.path={data / 'train.csv'}", f"data.test_path={data / 'dev.csv'}"],
    )
