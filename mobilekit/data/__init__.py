"""Calibration and evaluation images, and the one preprocessing function everything shares."""
