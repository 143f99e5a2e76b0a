"""Resolve a backbone name to a feature model and its preprocessing.

A name is either a `keras.applications` model ("resnet50", "ConvNeXtTiny",
"efficientnet_v2_b0": case, `_` and `-` do not matter) or a KerasHub preset
(a built-in preset name, an `hf://` / `kaggle://` handle, or a local preset
directory). `_resolve` is the one place that decides which.
"""

import dataclasses
import difflib
import fnmatch
import os

import keras

from keras_transfer.freezing import freeze
from keras_transfer.preprocessing import ImageNetPreprocessing

_HUB_SCHEMES = ("hf://", "kaggle://", "gs://", "modelscope://")
_HUB_INSTALL_HINT = "pip install keras-transfer[hub]"
_PRETRAINED = ("imagenet", "pretrained")
_POOLINGS = ("avg", "max", None)


@dataclasses.dataclass(frozen=True)
class ApplicationSpec:
    """Metadata of one `keras.applications` backbone.

    Attributes:
        name: The `keras.applications` constructor name, e.g. `"ResNet50"`.
        family: The `keras.applications` module, e.g. `"resnet"`.
        preprocessing: `ImageNetPreprocessing` mode of the family.
        default_size: Input side the ImageNet weights were trained at.
        min_size: Smallest input side the architecture accepts.
        static_shape_with_weights: Whether pretrained weights need a fully
            static `input_shape` (NASNet).
    """

    name: str
    family: str
    preprocessing: str
    default_size: int
    min_size: int = 32
    static_shape_with_weights: bool = False


def _family(family, preprocessing, sizes, **kwargs):
    return [
        ApplicationSpec(name, family, preprocessing, size, **kwargs)
        for name, size in sizes.items()
    ]


_EFFICIENTNET_SIZES = {
    f"EfficientNetB{i}": size
    for i, size in enumerate([224, 240, 260, 300, 380, 456, 528, 600])
}
_EFFICIENTNET_V2_SIZES = {
    "EfficientNetV2B0": 224,
    "EfficientNetV2B1": 240,
    "EfficientNetV2B2": 260,
    "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384,
    "EfficientNetV2M": 480,
    "EfficientNetV2L": 480,
}
_CONVNEXT = ("Tiny", "Small", "Base", "Large", "XLarge")

_SPECS = [
    *_family(
        "resnet",
        "caffe",
        dict.fromkeys(["ResNet50", "ResNet101", "ResNet152"], 224),
    ),
    *_family(
        "resnet_v2",
        "tf",
        dict.fromkeys(["ResNet50V2", "ResNet101V2", "ResNet152V2"], 224),
    ),
    *_family("vgg16", "caffe", {"VGG16": 224}),
    *_family("vgg19", "caffe", {"VGG19": 224}),
    *_family("efficientnet", "identity", _EFFICIENTNET_SIZES),
    *_family("efficientnet_v2", "identity", _EFFICIENTNET_V2_SIZES),
    *_family("convnext", "identity", {f"ConvNeXt{s}": 224 for s in _CONVNEXT}),
    *_family("mobilenet", "tf", {"MobileNet": 224}),
    *_family("mobilenet_v2", "tf", {"MobileNetV2": 224}),
    *_family(
        "mobilenet_v3",
        "identity",
        dict.fromkeys(["MobileNetV3Small", "MobileNetV3Large"], 224),
    ),
    *_family(
        "densenet",
        "torch",
        dict.fromkeys(["DenseNet121", "DenseNet169", "DenseNet201"], 224),
    ),
    *_family("xception", "tf", {"Xception": 299}, min_size=71),
    *_family("inception_v3", "tf", {"InceptionV3": 299}, min_size=75),
    *_family(
        "inception_resnet_v2", "tf", {"InceptionResNetV2": 299}, min_size=75
    ),
    *_family(
        "nasnet",
        "tf",
        {"NASNetMobile": 224, "NASNetLarge": 331},
        static_shape_with_weights=True,
    ),
]


def _normalize(name):
    return name.lower().replace("_", "").replace("-", "")


APPLICATIONS = {_normalize(spec.name): spec for spec in _SPECS}


@dataclasses.dataclass(frozen=True)
class BackboneInfo:
    """What `load_backbone` resolved a name to.

    Attributes:
        name: The resolved name (`keras.applications` constructor name or
            the KerasHub preset handle).
        source: `"keras.applications"` or `"keras_hub"`.
        modality: `"image"` or `"text"`.
        input_shape: Shape of one preprocessed image, or `None` for text.
        spec: The `ApplicationSpec`, for `keras.applications` backbones.
        hub_backbone: The `keras_hub.models.Backbone`, for KerasHub presets.
    """

    name: str
    source: str
    modality: str
    input_shape: tuple = None
    spec: ApplicationSpec = None
    hub_backbone: object = None


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A feature model and the preprocessing that feeds it raw inputs.

    Unpacks as `feature_model, preprocessing = load_backbone(...)`.

    Attributes:
        feature_model: `keras.Model` from preprocessed inputs to features.
        preprocessing: Keras layer from raw inputs (0..255 RGB images, or
            strings for text) to the inputs of `feature_model`.
        info: `BackboneInfo`.
    """

    feature_model: keras.Model
    preprocessing: keras.layers.Layer
    info: BackboneInfo

    def __iter__(self):
        return iter((self.feature_model, self.preprocessing))


def list_backbones(pattern="*"):
    """Sorted `keras.applications` backbone names matching an fnmatch pattern.

    KerasHub presets are listed by `keras_hub.models.Backbone.presets`.

    Args:
        pattern: String, case-insensitive fnmatch pattern. Defaults to `"*"`.

    Example:

    >>> keras_transfer.backbones.list_backbones("convnext*")
    ['ConvNeXtBase', 'ConvNeXtLarge', 'ConvNeXtSmall', 'ConvNeXtTiny',
     'ConvNeXtXLarge']
    """
    return sorted(
        spec.name
        for key, spec in APPLICATIONS.items()
        if fnmatch.fnmatch(key, _normalize(pattern))
        or fnmatch.fnmatch(spec.name.lower(), pattern.lower())
    )


def load_backbone(
    name, weights="imagenet", input_shape=None, pooling="avg", trainable=False
):
    """Builds a pretrained backbone and the preprocessing of its inputs.

    Args:
        name: A `keras.applications` name (see `list_backbones()`; case, `_`
            and `-` are ignored), a KerasHub built-in preset name, an
            `hf://` or `kaggle://` handle, or a local KerasHub preset
            directory.
        weights: `"imagenet"` (or `"pretrained"`): the pretrained weights
            (for KerasHub presets, whatever the preset ships); `None`: random
            initialisation; or the path of a weights file saved from the same
            feature model (`feature_model.save_weights(...)`). Defaults to
            `"imagenet"`.
        input_shape: Shape of one image, e.g. `(224, 224, 3)`; `None` for
            any size (or the default size where weights need a static one).
            Must be `None` for KerasHub presets, which fix their inputs.
        pooling: `"avg"` or `"max"`: features are `(batch, channels)`;
            `None`: the feature map (for text, the backbone's outputs).
            Text backbones support `"avg"` (mean over real tokens) and
            `None`. Defaults to `"avg"`.
        trainable: Boolean. `False` freezes the whole backbone. Defaults to
            `False`.

    Returns:
        A `Backbone` that unpacks as `(feature_model, preprocessing)`.

    Example:

    ```python
    features, preprocessing = keras_transfer.backbones.load_backbone(
        "mobilenet", weights=None, input_shape=(32, 32, 3)  # "imagenet" in real use
    )
    inputs = keras.Input((32, 32, 3), dtype="uint8")  # raw pixels
    embeddings = features(preprocessing(inputs), training=False)
    embeddings.shape  # (None, 1024)
    ```
    """
    _check_weights(weights)
    if pooling not in _POOLINGS:
        raise ValueError(
            "Invalid value received for argument `pooling`. Expected one of "
            f"{_POOLINGS}. Received: pooling={pooling!r}"
        )
    source, resolved = _resolve(name)
    if source == "keras.applications":
        backbone = _load_application(resolved, weights, input_shape, pooling)
    elif input_shape is not None:
        raise ValueError(
            f"Invalid value received for argument `input_shape` for KerasHub "
            f"preset {resolved!r}: the preset fixes its inputs (its image "
            "converter resizes images). Expected None. "
            f"Received: input_shape={input_shape}"
        )
    else:
        backbone = _load_hub(resolved, weights, pooling)
    if not trainable:
        freeze(backbone.feature_model)
    return backbone


def _check_weights(weights):
    if weights is None or weights in _PRETRAINED:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "Invalid value received for argument `weights`. Expected "
            "'imagenet', 'pretrained', None, or the path of a weights file. "
            f"Received: weights={weights!r}"
        )
    if not os.path.isfile(weights):
        raise ValueError(
            "Invalid value received for argument `weights`: no such weights "
            "file. Expected 'imagenet', 'pretrained', None, or the path of "
            f"an existing weights file. Received: weights={weights!r}"
        )


def _resolve(name):
    """Decides where `name` comes from: `(source, spec_or_handle)`."""
    if not isinstance(name, str) or not name:
        raise ValueError(
            "Invalid value received for argument `name`. Expected a backbone "
            f"name or preset handle string. Received: name={name!r}"
        )
    if name.startswith(_HUB_SCHEMES) or os.path.isdir(name):
        return "keras_hub", name
    spec = APPLICATIONS.get(_normalize(name))
    if spec is not None:
        return "keras.applications", spec
    hub_presets = _hub_preset_names()
    if name in hub_presets:
        return "keras_hub", name
    candidates = {key: spec.name for key, spec in APPLICATIONS.items()}
    candidates.update({_normalize(p): p for p in hub_presets})
    close = difflib.get_close_matches(_normalize(name), candidates, n=3)
    suggestion = (
        f" Did you mean {', '.join(repr(candidates[c]) for c in close)}?"
        if close
        else ""
    )
    looks_like_path = os.sep in name or "/" in name
    raise ValueError(
        f"Unknown backbone: name={name!r}.{suggestion} Expected a "
        "`keras.applications` name (see "
        "`keras_transfer.backbones.list_backbones()`), a KerasHub preset "
        "name, an 'hf://' or 'kaggle://' handle, or an existing preset "
        "directory"
        + (" (no directory exists at that path)." if looks_like_path else ".")
    )


def _hub_preset_names():
    try:
        import keras_hub
    except ImportError:
        return {}
    return keras_hub.models.Backbone.presets


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "KerasHub presets need the `keras_hub` package. Install it with "
            f"`{_HUB_INSTALL_HINT}`."
        ) from error
    return keras_hub


def check_input_shape(input_shape, like, *, min_size=1, static=False, owner):
    """The one input-shape check of backbones and zoo tasks.

    Args:
        input_shape: The shape to check (one example, no batch dimension).
        like: A shape of the right form: `(height, width, channels)` for
            images (in `keras.config.image_data_format()`), `(length,)` for
            token sequences. Its rank and channel count are required.
        min_size: Int. Smallest image side or sequence length.
        static: Bool. Whether `None` (any size) is refused.
        owner: String naming what the shape is for, e.g. `"backbone
            ResNet50 (resnet)"` or `"task 'test/tiny_cnn'"`.

    Returns:
        `input_shape` as a tuple.

    Raises:
        ValueError: naming the value, the owner and what is allowed.
    """
    input_shape = tuple(input_shape)
    like = tuple(like)
    channels_last = keras.config.image_data_format() == "channels_last"
    image = len(like) == 3
    if image:
        channel_axis = -1 if channels_last else 0
        channels = like[channel_axis]
        allowed = (
            f"(height, width, {channels}) in "
            f"{keras.config.image_data_format()} with height and width "
            f">= {min_size}" + (" and static (no None)" if static else "")
        )
    else:
        allowed = f"a shape like {like} with every size >= {min_size}"
    problem = None
    if len(input_shape) != len(like):
        problem = f"it must have {len(like)} dimensions, shaped like {like}"
    elif image and input_shape[channel_axis] != channels:
        problem = f"the model takes RGB images ({channels} channels)"
    else:
        sides = (
            (input_shape[:2] if channels_last else input_shape[1:])
            if image
            else input_shape
        )
        if any(
            s is not None and (not isinstance(s, int) or s < min_size)
            for s in sides
        ):
            problem = f"it needs images of at least {min_size}px" if image else (
                f"it needs a length of at least {min_size}"
            )
        elif static and None in sides:
            problem = "its pretrained weights need a static size"
    if problem:
        raise ValueError(
            f"Invalid value received for argument `input_shape` for {owner}: "
            f"{problem}. Expected {allowed}. Received: input_shape={input_shape}"
        )
    return input_shape


def _application_input_shape(spec, weights, input_shape):
    """Validates `input_shape` for `spec`, returns the shape to build with."""
    channels_last = keras.config.image_data_format() == "channels_last"
    needs_static = spec.static_shape_with_weights and weights is not None
    if input_shape is None:
        side = spec.default_size if needs_static else None
        return (side, side, 3) if channels_last else (3, side, side)
    return check_input_shape(
        input_shape,
        (None, None, 3) if channels_last else (3, None, None),
        min_size=spec.min_size,
        static=needs_static,
        owner=f"backbone {spec.name} ({spec.family})",
    )


def application_spec(name):
    """The `ApplicationSpec` of a `keras.applications` backbone name.

    Args:
        name: A `keras.applications` name; case, `_` and `-` are ignored.

    Returns:
        The `ApplicationSpec` (family, preprocessing, default and minimum
        input size) from the one table of backbone facts.

    Example:

    >>> keras_transfer.backbones.application_spec("convnext_tiny").default_size
    224
    """
    spec = APPLICATIONS.get(_normalize(name)) if isinstance(name, str) else None
    if spec is None:
        close = difflib.get_close_matches(
            _normalize(str(name)), list(APPLICATIONS), n=3
        )
        hint = (
            f" Did you mean {', '.join(APPLICATIONS[c].name for c in close)}?"
            if close
            else ""
        )
        raise ValueError(
            f"Unknown keras.applications backbone: name={name!r}.{hint} "
            "See `keras_transfer.backbones.list_backbones()`."
        )
    return spec


def _load_application(spec, weights, input_shape, pooling):
    input_shape = _application_input_shape(spec, weights, input_shape)
    constructor = getattr(keras.applications, spec.name)
    feature_model = constructor(
        include_top=False,
        weights="imagenet" if weights in _PRETRAINED else None,
        input_shape=input_shape,
        pooling=pooling,
    )
    if weights is not None and weights not in _PRETRAINED:
        feature_model.load_weights(weights)
    info = BackboneInfo(
        name=spec.name,
        source="keras.applications",
        modality="image",
        input_shape=input_shape,
        spec=spec,
    )
    preprocessing = ImageNetPreprocessing(spec.preprocessing)
    return Backbone(feature_model, preprocessing, info)


def _load_hub(handle, weights, pooling):
    keras_hub = _import_keras_hub()
    hub_backbone = keras_hub.models.Backbone.from_preset(
        handle, load_weights=weights in _PRETRAINED
    )
    if weights is not None and weights not in _PRETRAINED:
        hub_backbone.load_weights(weights)
    inputs = hub_backbone.input
    is_text = isinstance(inputs, dict) and "token_ids" in inputs
    modality = "text" if is_text else "image"
    if modality == "text":
        preprocessor_cls = keras_hub.models.TextClassifierPreprocessor
        preprocessing = preprocessor_cls.from_preset(handle)
        feature_model = text_features(hub_backbone, pooling)
        input_shape = None
    else:
        preprocessor_cls = keras_hub.models.ImageClassifierPreprocessor
        preprocessing = preprocessor_cls.from_preset(handle).image_converter
        feature_model = _pooled_image_features(hub_backbone, pooling)
        input_shape = tuple(hub_backbone.input_shape[1:])
    info = BackboneInfo(
        name=handle,
        source="keras_hub",
        modality=modality,
        input_shape=input_shape,
        hub_backbone=hub_backbone,
    )
    return Backbone(feature_model, preprocessing, info)


def text_features(hub_backbone, pooling="avg"):
    """Sentence features of a KerasHub text backbone.

    Args:
        hub_backbone: A `keras_hub.models.Backbone` with a `sequence_output`
            and a `padding_mask` input.
        pooling: `"avg"`: mean of the token features over real (unpadded)
            tokens, `(batch, hidden_dim)`; `None`: the backbone itself.

    Returns:
        A `keras.Model` taking the backbone's input dict.
    """
    if pooling is None:
        return hub_backbone
    if pooling != "avg":
        raise ValueError(
            "Invalid value received for argument `pooling` for a text "
            "backbone. Expected 'avg' (masked mean over tokens) or None. "
            f"Received: pooling={pooling!r}"
        )
    inputs = hub_backbone.input
    outputs = hub_backbone(inputs, training=False)
    if isinstance(outputs, dict):
        outputs = outputs["sequence_output"]
    pooled = keras.layers.GlobalAveragePooling1D(name="masked_mean")(
        outputs, mask=inputs["padding_mask"]
    )
    return keras.Model(inputs, pooled, name=f"{hub_backbone.name}_features")


def _pooled_image_features(hub_backbone, pooling):
    if pooling is None:
        return hub_backbone
    pool = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
    }[pooling]()
    inputs = hub_backbone.input
    return keras.Model(
        inputs,
        pool(hub_backbone(inputs, training=False)),
        name=f"{hub_backbone.name}_features",
    )
