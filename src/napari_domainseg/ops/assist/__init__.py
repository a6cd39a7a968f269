"""Assisted labeling: a pixel classifier that learns from the annotator's strokes.

Pure core (numpy, scipy, scikit-learn; no napari, Qt or magicgui):

- :mod:`.features`: filters in physical units, computed block by block with a halo.
- :mod:`.classifier`: a capped, class-balanced random forest trained on painted pixels,
  predicting a region or the whole image into a :class:`~.classifier.Proposal`
  (labels, per-class probabilities, uncertainty); models save with their recipe.
- :mod:`.regularise`: optional clean-up of a proposal (smoothing, stroke-connected regions).
- :mod:`.accept`: a proposal as edits under the painting policy, with provenance.
- :mod:`.review`: slices, tiles and classes ranked by uncertainty.
- :mod:`.io`: an image and its scribbles from files, checked to share a grid.
- :mod:`.robot`: a simulated annotator, for benchmarks and tests.
"""

from napari_domainseg.ops.assist.classifier import (
    AssistCancelled,
    AssistError,
    ForestSettings,
    PixelClassifier,
    Proposal,
    TrainingSummary,
)
from napari_domainseg.ops.assist.features import (
    AssistImage,
    FeatureCache,
    FeatureError,
    FeatureRecipe,
    default_recipe,
)

__all__ = [
    "AssistCancelled",
    "AssistError",
    "AssistImage",
    "FeatureCache",
    "FeatureError",
    "FeatureRecipe",
    "ForestSettings",
    "PixelClassifier",
    "Proposal",
    "TrainingSummary",
    "default_recipe",
]
