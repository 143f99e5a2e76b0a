"""Run reports: curves, prediction grids and the HTML page (rendered in Chromium)."""

import shutil
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

from keras_transfer.cli import reports
from keras_transfer.cli.report_html import write_report

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="report rendering is backend-independent; runs on the tensorflow run",
)


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype("int32")


def test_curves_have_integer_epochs_markers_and_an_outside_legend(tmp_path, monkeypatch):
    histories = {
        "transfer": {"loss": [2.0, 1.5, 1.0], "val_loss": [2.1, 1.7, 1.2],
                     "accuracy": [0.3, 0.5, 0.7], "val_accuracy": [0.3, 0.45, 0.6]},
        "DANN": {"loss": [2.5, 2.0, 1.8], "label_accuracy": [0.2, 0.4, 0.5],
                 "domain_loss": [0.7, 0.69, 0.69]},
    }
    from matplotlib.figure import Figure

    drawn = []
    save = Figure.savefig

    def keep(figure, *args, **kwargs):
        drawn.append(figure)
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    path = reports.plot_curves(tmp_path / "c.png", histories, "t", markers=[(1, "unfreeze")])
    (figure,) = drawn
    for axis in figure.axes:
        # Whole epochs on the x axis, and the marker between epochs 1 and 2.
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert any(list(line.get_xdata()) == [1.5, 1.5] for line in axis.get_lines())
    assert len(figure.legends) == 1 and not any(axis.get_legend() for axis in figure.axes)
    image = _pixels(path)
    assert image.shape[0] > 300
    # The legend lives below the panels: the bottom strip has ink in it.
    assert (image[-40:] < 200).any()
    with pytest.raises(ValueError, match="Nothing to plot"):
        reports.plot_curves(tmp_path / "x.png", {"a": {"lr": [1.0]}}, "t")


def test_prediction_grid_names_classes_and_marks_mistakes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3))
    path = reports.plot_predictions(
        tmp_path / "p.png", images, [0, 1, 2, 0, 1, 2], [0, 1, 0, 0, 2, 2],
        ["cat", "dog", "zebra"],
    )
    image = _pixels(path)
    red = (image[..., 0] > 200) & (image[..., 1] < 80) & (image[..., 2] < 80)
    assert red.sum() > 20  # two wrong predictions are titled in red


def _screenshot(browser, target, out):
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1000,1400", f"--screenshot={out}", target],
        check=True, capture_output=True, timeout=120,
    )
    return _pixels(out)


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="headless Chromium is not installed (.ci/run installs it)",
)
def test_html_report_renders_in_headless_chromium(tmp_path):
    curves = reports.plot_curves(
        tmp_path / "curves.png",
        {"fit": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}},
        "run",
    )
    page = write_report(
        tmp_path / "report.html",
        "keras-transfer run <test/tiny_cnn>",
        [
            ("Test metrics", {"accuracy": 0.91, "macro_f1": 0.9}),
            ("Per class", [{"class": "cat", "f1": 0.9}, {"class": "dog", "f1": 0.91}]),
            ("Curves", curves),
            ("Note", "evaluated once on the test split"),
        ],
    )
    text = page.read_text()
    assert "&lt;test/tiny_cnn&gt;" in text and "data:image/png;base64," in text
    browser = shutil.which("chromium")
    blank = _screenshot(browser, "about:blank", tmp_path / "blank.png")
    assert (blank == blank[0, 0]).all()  # the reference really is blank
    shot = _screenshot(browser, page.as_uri(), tmp_path / "shot.png")
    assert shot.shape == blank.shape
    changed = np.abs(shot - blank).sum(axis=-1) > 60
    assert changed.mean() > 0.005, "the report rendered (almost) blank"
    # The embedded curves image is drawn: matplotlib's default blue is there.
    blue = (np.abs(shot - np.array([31, 119, 180])).sum(axis=-1) < 40).sum()
    assert blue > 50
