import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds, before any resizing or batching.

    Returned by `keras_transfer.datasets.describe` and by
    `keras_transfer.datasets.load(..., with_info=True)`.

    Args:
        name: String. The dataset spec, e.g. `"tfds:cifar10"` or `"digits"`.
        num_classes: Integer. Number of label classes.
        class_names: Tuple of strings, one per class, in label order.
        image_shape: Tuple `(height, width, channels)` of the stored images;
            `None` for a dimension that varies between images.
        num_examples: Integer, or `None` when unknown before reading (tfds
            datasets that are not downloaded yet).
    """

    name: str
    num_classes: int
    class_names: tuple
    image_shape: tuple
    num_examples: int | None = None

    def check(self, num_classes=None, input_shape=None, class_names=None):
        """Raise `ValueError` if this dataset cannot feed a task.

        Height and width never conflict (`load` resizes), nor do 1 and 3
        channels (`load(..., channels=...)` converts grayscale and RGB).

        Args:
            num_classes: Integer or `None`. The task's number of classes.
            input_shape: Tuple `(height, width, channels)` or `None`. The
                task's input shape.
            class_names: Sequence of strings or `None`. The classes, in label
                order, of the data the model learnt (e.g. the training
                split): another split must name the same classes in the same
                order, or its labels mean something else.
        """
        if num_classes is not None and num_classes != self.num_classes:
            raise ValueError(
                f"Dataset {self.name!r} has {self.num_classes} classes but the "
                f"task expects num_classes={num_classes}. Pass "
                f"num_classes={self.num_classes} to build the task for this dataset."
            )
        if class_names is not None and tuple(class_names) != tuple(self.class_names):
            differ = [
                f"label {i}: {mine!r} here, {theirs!r} expected"
                for i, (mine, theirs) in enumerate(
                    zip(self.class_names, class_names)
                )
                if mine != theirs
            ]
            raise ValueError(
                f"Dataset {self.name!r} names its classes "
                f"{list(self.class_names)} but the model learnt "
                f"{list(class_names)} ({'; '.join(differ) or 'other count'}): "
                "its labels would mean other classes."
            )
        if input_shape is None:
            return
        data_channels, task_channels = self.image_shape[-1], input_shape[-1]
        convertible = {data_channels, task_channels} <= {1, 3}
        if data_channels != task_channels and not convertible:
            raise ValueError(
                f"Dataset {self.name!r} has images of shape {self.image_shape} "
                f"but the task expects input_shape={tuple(input_shape)}: "
                f"{data_channels} channels cannot be converted to {task_channels}."
            )
