"""The native PyTorch peer: Keras' ResNet50 and MobileNetV2, layer for layer, in plain torch.

torchvision's CUDA wheel does not import beside the CPU torch used here, so the
two architectures are written out as `keras.applications` builds them (ResNet50
v1 with biased convolutions and the stride on the first 1x1 of a block;
MobileNetV2 alpha 1.0), with the zoo's head (global average pooling, dropout
0.2, linear). `parameter_count` counts weights plus BatchNorm running
statistics, which is what Keras' `count_params()` counts, so the two numbers
must be equal (the benchmark records both).

A training step is what a PyTorch user writes: forward, cross-entropy,
backward, SGD with momentum; inputs in `torch.channels_last` memory format, on
the GPU when there is one (images copied per step from pinned host memory, as
a `DataLoader(pin_memory=True)` gives them), under `torch.autocast` for
`precision="bfloat16"` (float32 weights, bfloat16 compute: what Keras'
`mixed_bfloat16` policy does). uint8 images are cast to float32 on the device.
Mode `full` trains every layer but BatchNorm, which stays in eval mode (as
`keras_transfer.unfreeze` leaves it); mode `frozen` runs the backbone under
`torch.no_grad()` in eval mode and trains the head only.
"""

import torch
from torch import nn

_NORMALIZE = {
    # keras.applications preprocessing on raw 0..255 RGB pixels.
    "resnet50": "caffe",
    "mobilenetv2": "tf",
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _bn(channels, eps):
    return nn.BatchNorm2d(channels, eps=eps)


class _Bottleneck(nn.Module):
    def __init__(self, in_channels, filters, stride, conv_shortcut):
        super().__init__()
        eps = 1.001e-5
        self.shortcut = (
            nn.Sequential(
                nn.Conv2d(in_channels, 4 * filters, 1, stride=stride),
                _bn(4 * filters, eps),
            )
            if conv_shortcut
            else nn.Identity()
        )
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, filters, 1, stride=stride),
            _bn(filters, eps),
            nn.ReLU(inplace=True),
            nn.Conv2d(filters, filters, 3, padding=1),
            _bn(filters, eps),
            nn.ReLU(inplace=True),
            nn.Conv2d(filters, 4 * filters, 1),
            _bn(4 * filters, eps),
        )

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.body(x))


def resnet50_features():
    """`keras.applications.ResNet50(include_top=False)` in torch."""
    layers = [
        nn.Conv2d(3, 64, 7, stride=2, padding=3),
        _bn(64, 1.001e-5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    in_channels = 64
    for filters, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for index in range(blocks):
            layers.append(
                _Bottleneck(
                    in_channels,
                    filters,
                    stride if index == 0 else 1,
                    conv_shortcut=index == 0,
                )
            )
            in_channels = 4 * filters
    return nn.Sequential(*layers), in_channels


class _InvertedResidual(nn.Module):
    def __init__(self, in_channels, filters, stride, expansion):
        super().__init__()
        eps = 1e-3
        hidden = in_channels * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(in_channels, hidden, 1, bias=False), _bn(hidden, eps), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            _bn(hidden, eps),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, filters, 1, bias=False),
            _bn(filters, eps),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = in_channels == filters and stride == 1

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenetv2_features():
    """`keras.applications.MobileNetV2(include_top=False)` (alpha 1.0) in torch."""
    layers = [nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), _bn(32, 1e-3), nn.ReLU6(inplace=True)]
    in_channels = 32
    # (expansion, filters, repeats, first stride), as in keras.applications.
    for expansion, filters, repeats, stride in (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ):
        for index in range(repeats):
            layers.append(_InvertedResidual(in_channels, filters, stride if index == 0 else 1, expansion))
            in_channels = filters
    layers += [nn.Conv2d(in_channels, 1280, 1, bias=False), _bn(1280, 1e-3), nn.ReLU6(inplace=True)]
    return nn.Sequential(*layers), 1280


BACKBONES = {"resnet50": resnet50_features, "mobilenetv2": mobilenetv2_features}


class Classifier(nn.Module):
    """Raw 0..255 RGB (NCHW) -> keras.applications preprocessing -> backbone -> head."""

    def __init__(self, name, num_classes):
        super().__init__()
        self.backbone, channels = BACKBONES[name]()
        self.normalize = _NORMALIZE[name]
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, num_classes)
        )
        if self.normalize == "caffe":
            mean = torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            self.register_buffer("mean_bgr", mean, persistent=False)

    def preprocess(self, images):
        if self.normalize == "caffe":
            return images.flip(1) - self.mean_bgr
        return images / 127.5 - 1.0

    def forward(self, images, frozen=False):
        x = self.preprocess(images)
        if frozen:
            with torch.no_grad():
                x = self.backbone(x)
        else:
            x = self.backbone(x)
        return self.head(x)


def parameter_count(model):
    """Weights plus BatchNorm running statistics (what Keras' `count_params()` counts)."""
    weights = sum(p.numel() for p in model.parameters())
    statistics = sum(
        b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var"))
    )
    return weights + statistics


def device():
    """The device the peer trains on: the first GPU when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_step(name, num_classes, mode, compiled, learning_rate=0.01, momentum=0.9, precision="float32"):
    """`(model, step)`: `step(images, labels)` runs one training step and returns the loss.

    `images` are NCHW host tensors (float32 or uint8, 0..255); the step moves
    them to `device()` itself. The returned loss is not synchronised.
    """
    target = device()
    model = Classifier(name, num_classes).to(target, memory_format=torch.channels_last)
    frozen = mode == "frozen"
    if frozen:
        model.backbone.eval()
        model.backbone.requires_grad_(False)
        model.head.train()
    else:
        # As `keras_transfer.unfreeze` does: BatchNorm stays in inference mode, untrained.
        model.train()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
                module.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=learning_rate, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()

    autocast = precision == "bfloat16"

    def forward_backward(images, labels):
        with torch.autocast(target.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(images.float(), frozen=frozen), labels)
        loss.backward()
        return loss

    if compiled:
        forward_backward = torch.compile(forward_backward)

    def step(images, labels):
        images = images.to(target, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(target, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = forward_backward(images, labels)
        optimizer.step()
        return loss

    return model, step
