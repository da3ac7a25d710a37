"""Network definitions (pure torch, no file I/O): the HED edge detector and ImageNet backbones."""
