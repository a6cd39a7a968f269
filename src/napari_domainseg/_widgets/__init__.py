"""Dock widgets. Each only wires Qt/magicgui controls to core functions."""
