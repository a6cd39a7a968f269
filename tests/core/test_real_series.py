"""The minimal series reader on a real scanner folder (the full medical path is issue 3)."""

import numpy as np

from napari_domainseg.medical.series import read_dicom_series


def test_ct_head_series_reads_in_hounsfield_units(shared_data):
    volume = read_dicom_series(shared_data / "medical" / "ct_head_study" / "S2010")
    assert volume.shape == (28, 512, 512)
    assert volume.metadata["modality"] == "CT"
    # dcm2niix's reference conversion of this series spans -1024 to 782 HU.
    assert (volume.array.min(), volume.array.max()) == (-1024, 782)
    steps = np.diff(volume.index_to_world(np.array([[k, 0, 0] for k in range(28)]))[:, 0])
    assert np.all(steps > 0), "slices ordered inferior to superior along the normal"
