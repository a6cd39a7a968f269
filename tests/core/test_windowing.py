import numpy as np
import pytest

from napari_domainseg.medical.windowing import (
    CT_PRESETS,
    contrast_limits,
    default_window,
    preset,
)


def test_presets_match_radiology_conventions():
    assert preset("Brain") == (40.0, 80.0)
    assert preset("lung") == (-600.0, 1500.0)
    assert preset("bone") == (400.0, 1800.0)
    assert {"subdural", "stroke", "mediastinum", "abdomen", "liver"} <= set(CT_PRESETS)
    assert contrast_limits(preset("abdomen")) == (-160.0, 240.0)
    with pytest.raises(KeyError, match="available"):
        preset("nope")


def test_default_window_prefers_header_then_modality_then_data():
    assert default_window((30.0, 90.0), "CT") == (30.0, 90.0)
    assert default_window(None, "CT") == (40.0, 400.0)
    assert default_window((30.0, 0.0), "CT") == (40.0, 400.0), "a zero width is ignored"
    values = np.arange(1000, dtype=float)
    center, width = default_window(None, "MR", values)
    assert center == pytest.approx(499.5) and width == pytest.approx(979.02, abs=0.01)
