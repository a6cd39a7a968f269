# napari-domainseg: one entry point. Both targets install what they need first.
#   make demo   napari with the sample CT and scene (headless: saves a screenshot)
#   make test   the full test suite, under a virtual display
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_SCREENSHOT ?= demo-screenshots/demo.png

.PHONY: install demo test lint bench clean

install:
	bash scripts/bootstrap.sh

demo: install
	@if [ -n "$$DISPLAY" ] && [ -z "$$DEMO_HEADLESS" ]; then \
		$(PY) -m napari_domainseg._demo; \
	else \
		xvfb-run -a -s "-screen 0 2800x1000x24" $(PY) -m napari_domainseg._demo --screenshot $(DEMO_SCREENSHOT); \
	fi

test: install
	$(VENV)/bin/ruff check src tests benchmarks sample_data
	$(VENV)/bin/lint-imports
	QT_API=pyqt6 xvfb-run -a -s "-screen 0 1920x1080x24" $(PY) -m pytest

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-screenshots .pytest_cache
