"""keras_transfer.adaptation: unsupervised domain adaptation with plain `fit`.

DANN, Deep CORAL and DAN/MMD models (`alignment`); pixel-level adaptation,
PixelDA (`generative`); `paired_dataset` and `PairedArrays` live in
`keras_transfer.datasets` and are re-exported here.
"""

from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import build_coral
from keras_transfer.adaptation.alignment import build_dann
from keras_transfer.adaptation.alignment import build_mmd
from keras_transfer.adaptation.alignment import default_discriminator
from keras_transfer.adaptation.generative import PixelDAModel
from keras_transfer.adaptation.generative import UniformNoise
from keras_transfer.adaptation.generative import build_pixelda
from keras_transfer.adaptation.generative import check_pixels
from keras_transfer.adaptation.generative import pixelda_classifier
from keras_transfer.adaptation.generative import pixelda_discriminator
from keras_transfer.adaptation.generative import pixelda_generator
from keras_transfer.adaptation.generative import plot_translations
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.datasets.paired import paired_dataset
