"""mobilekit: turn a trained Keras vision model into a proven Android/iOS release bundle."""

__version__ = "0.1.0"
