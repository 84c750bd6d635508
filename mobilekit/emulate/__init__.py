"""Emulated mobile runtimes: run the converted artifacts here, as the phone would."""
