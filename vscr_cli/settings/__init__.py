"""Each stage's parameters, choices and defaults as plain data, light to import (no torch, timm,
higra, cv2, skimage, pytorch_grad_cam, dask or zarr): the commands declare their options from
these, and refuse a bad output or a missing input before they import their stage."""
