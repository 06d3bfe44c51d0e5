"""Models: checkpoints, devices, the native LFM2 trunk, encoders and the shared-encoder registry."""
