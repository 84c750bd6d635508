"""Parity: how far a converted model is from the float model, and the gate that fails the build."""
