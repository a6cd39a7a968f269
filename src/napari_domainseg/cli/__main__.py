"""``python -m napari_domainseg.cli``: the ``domainseg`` command (e.g. under ``-X importtime``)."""

from napari_domainseg.cli import main_exit

if __name__ == "__main__":
    main_exit()
