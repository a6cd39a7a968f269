"""The "DICOM series" dock widget: list every series in a folder and open the one you want.

Discovery and reading live in :mod:`napari_domainseg.medical`; this widget
runs them in a worker thread (napari shows the activity), lists the
candidates, and adds the chosen series as an image layer. Options: resample
irregular or tilted series to a regular grid (never by default), open only the
readable slices of a series with truncated or inconsistent files (never by
default), Philips "precise" values instead of display values, and show the
patient's identification (off by default, kept out of layer metadata otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.layers import Layer
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_domainseg._napari import _layer_state as state
from napari_domainseg._napari._layer_data import volume_layer_data
from napari_domainseg._napari._viewer_setup import watch
from napari_domainseg.medical.discovery import Discovery, SeriesCandidate, discover
from napari_domainseg.medical.geometry_checks import layer_name
from napari_domainseg.medical.series import LoadedSeries, read_series

if TYPE_CHECKING:
    import napari


class SeriesPicker(QWidget):
    """Lists the series of a DICOM folder and opens the chosen one."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.discovery: Discovery | None = None
        self.folder: Path | None = None
        self._worker = None
        watch(napari_viewer)

        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("DICOM folder (searched recursively)")
        self.folder_edit.returnPressed.connect(self.scan)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        scan = QPushButton("Scan")
        scan.clicked.connect(self.scan)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        row.addWidget(scan)

        self.series_list = QListWidget()
        self.series_list.itemDoubleClicked.connect(lambda _: self.open_selected())
        self.resample_box = QCheckBox("Resample irregular or tilted series")
        self.resample_box.setToolTip(
            "Interpolate unequally spaced slices onto equal steps and remove gantry tilt "
            "(as dcm2niix's _Eq and _Tilt outputs). Off: such series are refused (gaps) "
            "or shown on their acquired grid (tilt)."
        )
        self.skip_unreadable_box = QCheckBox("Skip unreadable slices")
        self.skip_unreadable_box.setToolTip(
            "Open the readable slices of a series whose files are truncated or inconsistent "
            "(named in a warning). Off: such a series is refused. A gap the skipped slices "
            "leave is still detected (refused, or resampled when asked)."
        )
        self.philips_box = QCheckBox("Philips precise values")
        self.philips_box.setToolTip(
            "Philips MR: floating-point values from the private scale slope (2005,100E), "
            "as dcm2niix writes by default. Off: display values (RescaleSlope/Intercept, "
            "the DICOM standard)."
        )
        self.patient_box = QCheckBox("Show patient data")
        self.patient_box.setToolTip(
            "Add name, ID, birth date and study details to the layer metadata and show them "
            "here. Off by default: metadata is shared and exported without them."
        )
        self.patient_label = QLabel()
        self.patient_label.setWordWrap(True)
        self.patient_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open series")
        self.open_button.clicked.connect(self.open_selected)
        self.status = QLabel()
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.series_list, 1)
        layout.addWidget(self.resample_box)
        layout.addWidget(self.skip_unreadable_box)
        layout.addWidget(self.philips_box)
        layout.addWidget(self.patient_box)
        layout.addWidget(self.open_button)
        layout.addWidget(self.status)
        layout.addWidget(self.patient_label)
        self._prefill_from_active_layer()

    def _prefill_from_active_layer(self) -> None:
        active = self.viewer.layers.selection.active
        geometry = state.volume_geometry_of(active) if active else None
        files = geometry.source.source_files if geometry is not None else None
        if files:
            self.folder_edit.setText(str(Path(files[0]).parent))

    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "DICOM folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)
            self.scan()

    def scan(self, folder: str | Path | None = None) -> None:
        """List the series in ``folder`` (default: the folder field), in a worker thread."""
        if folder:
            self.folder_edit.setText(str(folder))
        path = Path(self.folder_edit.text().strip()).expanduser()
        if not path.is_dir():
            show_error(f"DICOM series: {path} is not a folder.")
            return
        self.status.setText(f"Scanning {path}…")
        self.series_list.clear()
        worker = thread_worker(
            discover, progress={"total": 0, "desc": f"Scanning {path.name}"}, ignore_errors=True
        )(path)
        worker.returned.connect(lambda discovery: self._show(path, discovery))
        worker.errored.connect(lambda exc: self._fail(f"Cannot scan {path}: {exc}"))
        self._start(worker)

    def _start(self, worker) -> None:
        self._worker = worker
        worker.finished.connect(lambda: setattr(self, "_worker", None))
        worker.start()

    def _show(self, folder: Path, discovery: Discovery) -> None:
        self.folder, self.discovery = folder, discovery
        self.series_list.clear()
        for candidate in discovery.candidates:
            item = QListWidgetItem(candidate.summary())
            item.setData(Qt.ItemDataRole.UserRole, candidate.series_uid)
            if not candidate.is_volume_capable:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"A {candidate.kind}: not a volume to annotate")
            elif candidate.unreadable:
                item.setToolTip(
                    "Unreadable files: "
                    + "; ".join(f"{f.name}: {why}" for f, why in candidate.unreadable[:5])
                    + ". Check 'Skip unreadable slices' to open the others."
                )
            self.series_list.addItem(item)
        volumes = [c for c in discovery.candidates if c.is_volume_capable]
        if volumes:
            self.series_list.setCurrentRow(discovery.candidates.index(volumes[0]))
        self.status.setText(
            f"{len(discovery.candidates)} series ({len(volumes)} volumes); "
            f"{discovery.skipped_summary()}."
        )

    def selected_candidate(self) -> SeriesCandidate | None:
        """The series chosen in the list."""
        row = self.series_list.currentRow()
        if self.discovery is None or row < 0:
            return None
        return self.discovery.candidates[row]

    def open_selected(self) -> None:
        """Read the chosen series in a worker thread and add it as an image layer."""
        candidate = self.selected_candidate()
        if candidate is None or not candidate.is_volume_capable:
            show_warning("DICOM series: choose a volume series in the list first.")
            return
        self.status.setText(f"Opening {candidate.summary()}…")
        worker = thread_worker(
            read_series, progress={"total": 0, "desc": "Reading DICOM series"}, ignore_errors=True
        )(
            self.folder,
            candidate.series_uid,
            discovery=self.discovery,
            resample=self.resample_box.isChecked(),
            include_patient=self.patient_box.isChecked(),
            skip_unreadable=self.skip_unreadable_box.isChecked(),
            philips_scaling="precise" if self.philips_box.isChecked() else "display",
        )
        worker.returned.connect(self._add)
        worker.errored.connect(lambda exc: self._fail(f"Cannot open {candidate.summary()}: {exc}"))
        self._start(worker)

    def _add(self, loaded: LoadedSeries) -> None:
        for warning in loaded.warnings:
            show_warning(warning)
        volume = loaded.volume
        name = volume.metadata.get("series_description") or loaded.candidate.label()
        name = layer_name(name, volume.metadata)
        layer = self.viewer.add_layer(Layer.create(*volume_layer_data(volume, name)))
        patient = volume.metadata.get("patient")
        self.patient_label.setText(
            "\n".join(f"{k}: {v}" for k, v in patient.items()) if patient else ""
        )
        self.status.setText(f"Opened {loaded.candidate.summary()}.")
        show_info(f"Opened {loaded.candidate.summary()} as '{layer.name}'.")

    def _fail(self, message: str) -> None:
        self.status.setText(message)
        show_error(message)
