"""keras_transfer.adaptation: unsupervised domain adaptation with plain `fit`.

- Feature alignment: DANN, Deep CORAL and DAN/MMD models (`alignment`).
- Target self-training: entropy minimisation, MCC, FixMatch
  (`self_training`), and AdaBN, `adapt_batch_norm` (`batch_norm`).

`paired_dataset` and `PairedArrays` live in `keras_transfer.datasets` and
are re-exported here.
"""

from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import build_coral
from keras_transfer.adaptation.alignment import build_dann
from keras_transfer.adaptation.alignment import build_mmd
from keras_transfer.adaptation.alignment import default_discriminator
from keras_transfer.adaptation.batch_norm import adapt_batch_norm
from keras_transfer.adaptation.self_training import build_entropy_minimization
from keras_transfer.adaptation.self_training import build_fixmatch
from keras_transfer.adaptation.self_training import build_mcc
from keras_transfer.adaptation.self_training import default_strong_augmentation
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.datasets.paired import paired_dataset
