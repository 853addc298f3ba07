"""napari tests: a real Qt window on an X server (pytest-xvfb starts Xvfb when it is installed).

napari draws its canvas with OpenGL (vispy), which Qt's ``offscreen`` platform does not provide
("QOpenGLWidget is not supported on this platform", then vispy fails to read the GL extensions):
the viewer needs an X display, which Xvfb (Debian package ``xvfb``, installed by ``make install``)
gives on a headless machine. Without napari, or without a display, these tests are skipped with the
reason; nothing else in the suite needs either.
"""

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari is not installed: pip install 'sklearn-ddpm[napari]'")
pytest.importorskip("pytestqt", reason="pytest-qt (napari's make_napari_viewer needs it) is not installed")

if os.environ.get("DISPLAY"):
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # an inherited "offscreen" would have no OpenGL


@pytest.fixture(autouse=True)
def _needs_display():
    if not os.environ.get("DISPLAY"):
        hint = "Xvfb was not found" if shutil.which("Xvfb") is None else "pytest-xvfb did not start Xvfb"
        pytest.skip(f"napari's canvas needs an X display with OpenGL ({hint}; apt-get install xvfb, "
                    "pip install pytest-xvfb)")


@pytest.fixture(scope="session")
def tiny_backbone_folder(tiny_backbone, tmp_path_factory):
    """The tiny random-init backbone as a diffusers folder: the widget's "diffusers folder" choice."""
    folder = tmp_path_factory.mktemp("backbone") / "tiny"
    tiny_backbone.save_pretrained(folder)
    return folder


def stroke(layer, points, label, plane=None):
    """Paint one stroke (one undo step, one ``paint`` event) through the points, as a mouse drag does."""
    with layer.block_history():
        for y, x in points:
            layer.paint((y, x) if plane is None else (plane, y, x), label, refresh=False)
    layer.refresh()


def line(y0, x0, y1, x1, n=8):
    """``n`` points from (y0, x0) to (y1, x1)."""
    return list(zip(np.linspace(y0, y1, n).round().astype(int), np.linspace(x0, x1, n).round().astype(int)))
