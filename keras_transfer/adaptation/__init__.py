"""keras_transfer.adaptation: unsupervised domain adaptation with plain `fit`.

DANN, Deep CORAL and DAN/MMD models (`alignment`); `paired_dataset` and
`PairedArrays` live in `keras_transfer.datasets` and are re-exported here.
"""

from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import build_coral
from keras_transfer.adaptation.alignment import build_dann
from keras_transfer.adaptation.alignment import build_mmd
from keras_transfer.adaptation.alignment import default_discriminator
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.datasets.paired import paired_dataset
