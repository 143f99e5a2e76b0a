"""keras_transfer.adaptation: unsupervised domain adaptation with plain `fit`.

- Start here: `adapt` (the recommended entry point) and `select` (the same
  machine with your own candidates): train several methods, score them
  without target labels, keep the best or fall back to source-only, and
  report why (`selection`).
- Feature alignment: DANN, Deep CORAL and DAN/MMD models (`alignment`).
- Target self-training: entropy minimisation, MCC, FixMatch
  (`self_training`), and AdaBN, `adapt_batch_norm` (`batch_norm`).
- Pixel-level (generative) adaptation: PixelDA (`generative`).
- Validators without target labels: SND and DEV (`validators`).

`paired_dataset` and `PairedArrays` live in `keras_transfer.datasets` and
are re-exported here.
"""

from keras_transfer.adaptation import validators
from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import build_coral
from keras_transfer.adaptation.alignment import build_dann
from keras_transfer.adaptation.alignment import build_mmd
from keras_transfer.adaptation.alignment import default_discriminator
from keras_transfer.adaptation.batch_norm import adapt_batch_norm
from keras_transfer.adaptation.generative import PixelDAModel
from keras_transfer.adaptation.generative import UniformNoise
from keras_transfer.adaptation.generative import build_pixelda
from keras_transfer.adaptation.generative import check_pixels
from keras_transfer.adaptation.generative import pixelda_classifier
from keras_transfer.adaptation.generative import pixelda_discriminator
from keras_transfer.adaptation.generative import pixelda_generator
from keras_transfer.adaptation.generative import plot_translations
from keras_transfer.adaptation.selection import AdaptationReport
from keras_transfer.adaptation.selection import AdaptationResult
from keras_transfer.adaptation.selection import CANDIDATES
from keras_transfer.adaptation.selection import CandidateContext
from keras_transfer.adaptation.selection import CandidateResult
from keras_transfer.adaptation.selection import RECOMMENDED
from keras_transfer.adaptation.selection import adapt
from keras_transfer.adaptation.selection import build_source_only
from keras_transfer.adaptation.selection import select
from keras_transfer.adaptation.self_training import build_entropy_minimization
from keras_transfer.adaptation.self_training import build_fixmatch
from keras_transfer.adaptation.self_training import build_mcc
from keras_transfer.adaptation.self_training import default_strong_augmentation
from keras_transfer.adaptation.validators import dev_risk
from keras_transfer.adaptation.validators import importance_weights
from keras_transfer.adaptation.validators import snd_score
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.datasets.paired import paired_dataset
