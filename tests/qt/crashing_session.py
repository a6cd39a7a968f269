"""A napari session that annotates, autosaves, then dies without warning (SIGKILL).

Run by ``test_autosave.py`` in a subprocess: ``python crashing_session.py SERIES_FOLDER``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
from qtpy.QtWidgets import QApplication

import napari
from napari_domainseg._widgets._annotation_panel import AnnotationPanel


def main(folder: str) -> None:
    viewer = napari.Viewer(show=False)
    viewer.open(folder, plugin="napari-domainseg")
    panel = AnnotationPanel(viewer)
    labels = panel.new_annotation_layer()
    labels.data_setitem((np.full(50, 2), np.arange(50), np.arange(50)), 4)
    panel.recovery.interval.setValue(1)  # autosave every second
    deadline = time.monotonic() + 30
    while panel.recovery.autosaver.saves < 1 and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    labels.data_setitem((np.full(10, 1), np.arange(10), np.zeros(10, int)), 6)  # unsaved work
    print(f"SAVED {panel.recovery.autosaver.saves}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1])
