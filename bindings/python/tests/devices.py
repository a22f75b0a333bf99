"""The devices a torch test can run on (imported by the torch and transformers tests)."""

import pytest


def torch_devices():
    """'cpu' always; 'cuda' when PyTorch sees a GPU *and* libflashport's CUDA backend is available, so a machine
    without the module skips the CUDA cases instead of failing them."""
    import torch

    import flashport

    devices = ["cpu"]
    if torch.cuda.is_available():
        cuda = [b for b in flashport.backends() if b.name == "cuda"]
        if cuda and cuda[0].available:
            devices.append("cuda")
        else:
            devices.append(pytest.param("cuda", marks=pytest.mark.skip(
                reason=f"flashport CUDA backend unavailable: {cuda[0].status_message if cuda else 'not built'}")))
    return devices
